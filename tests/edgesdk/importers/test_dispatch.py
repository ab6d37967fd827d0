"""Recipe -> model file(s) -> ModelProto, for every format."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from edgesdk.errors import ArtifactNotFound, MissingDependencyError, RecipeError
from edgesdk.importers import formats, import_model, resolve_model_path, resolve_weights_path
from edgesdk.recipe import Recipe, load_recipe, parse_recipe

TINY_CFG = """
[net]
width=16
height=8
channels=3

[convolutional]
filters=18
size=1
stride=2
batch_normalize=1
activation=leaky

[yolo]
mask=0,1,2
anchors=1,2, 3,4, 5,6
classes=1
num=3
"""


def recipe(model: dict[str, Any], shape: list[int] | None = None, **extra: Any) -> Recipe:
    data = load_recipe("yolo-fastest").resolved()
    data["model"] = model
    data["input"] = {"shape": shape or [1, 3, 8, 16], **extra}
    return parse_recipe(data, "test")


@pytest.fixture()
def tiny(write_darknet) -> tuple[Path, Path]:
    return write_darknet(TINY_CFG, name="tiny")


def test_formats() -> None:
    assert formats() == ["darknet", "onnx", "torch"]


def test_darknet_weights_beside_cfg_relative_to_model_dir(tiny) -> None:
    cfg, weights = tiny
    r = recipe({"format": "darknet", "cfg": "tiny.cfg"})
    assert resolve_model_path(r, model_dir=cfg.parent) == cfg
    assert resolve_weights_path(r, model_dir=cfg.parent) == weights
    model = import_model(r, model_dir=cfg.parent)
    assert [o.name for o in model.graph.output] == ["yolo_0"]


def test_model_dir_defaults_to_the_environment(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = tiny
    monkeypatch.setenv("EDGESDK_MODEL_DIR", str(cfg.parent))
    assert resolve_model_path(recipe({"format": "darknet", "cfg": "tiny.cfg"})) == cfg


def test_darknet_weights_named_by_the_recipe(tiny, tmp_path: Path) -> None:
    cfg, weights = tiny
    renamed = weights.rename(tmp_path / "other-name.weights")
    r = recipe({"format": "darknet", "cfg": str(cfg), "weights": "other-name.weights"})
    assert resolve_weights_path(r, model_dir=tmp_path) == renamed
    with pytest.raises(ArtifactNotFound, match="tiny.weights") as err:
        resolve_weights_path(recipe({"format": "darknet", "cfg": str(cfg)}))
    assert "model.weights" in (err.value.hint or "")


def test_model_override(tiny, tmp_path: Path) -> None:
    cfg, weights = tiny
    r = recipe({"format": "darknet", "cfg": "elsewhere/missing.cfg"})
    assert resolve_model_path(r, model=cfg) == cfg
    assert resolve_weights_path(r, model=cfg) == weights
    r2 = recipe({"format": "darknet", "cfg": "tiny.cfg"})
    assert resolve_model_path(r2, model_dir=tmp_path, model=weights) == cfg  # .weights overrides weights only
    assert resolve_weights_path(r2, model_dir=tmp_path, model=weights) == weights
    with pytest.raises(ArtifactNotFound, match="override"):
        resolve_model_path(r, model=tmp_path / "nope.cfg")


def test_missing_model_says_how_it_was_resolved(tmp_path: Path) -> None:
    r = recipe({"format": "onnx", "path": "sub/model.onnx"})
    with pytest.raises(ArtifactNotFound) as err:
        resolve_model_path(r, model_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "sub" / "model.onnx") in message and "model.path='sub/model.onnx'" in message
    assert "EDGESDK_MODEL_DIR" in (err.value.hint or "")


def test_recipe_options_reach_the_converter(tiny) -> None:
    cfg, _ = tiny
    r = recipe({"format": "darknet", "cfg": str(cfg), "fuse_bn": False, "opset": 17}, shape=[4, 3, 8, 16])
    model = import_model(r)
    assert [n.op_type for n in model.graph.node].count("BatchNormalization") == 1
    assert model.opset_import[0].version == 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_recipe_shape_must_match_the_cfg(tiny) -> None:
    cfg, _ = tiny
    with pytest.raises(RecipeError, match=r"input.shape \[1, 3, 16, 16\]") as err:
        import_model(recipe({"format": "darknet", "cfg": str(cfg)}, shape=[1, 3, 16, 16]))
    assert "[1, 3, 8, 16]" in (err.value.hint or "")
    with pytest.raises(RecipeError, match="named 'images'"):
        import_model(recipe({"format": "darknet", "cfg": str(cfg)}, name="data"))


def test_onnx_recipe(models_dir: Path) -> None:
    r = recipe({"format": "onnx", "path": "yolov5n_coco/yolov5n.onnx"}, shape=[1, 3, 640, 640])
    assert resolve_weights_path(r, model_dir=models_dir) is None
    assert import_model(r, model_dir=models_dir).graph.input[0].name == "images"
    bad = recipe(
        {"format": "onnx", "path": "yolov5n_coco/yolov5n.onnx"}, shape=[1, 3, 640, 640], name="input"
    )
    with pytest.raises(RecipeError, match="'input' is not an input"):
        import_model(bad, model_dir=models_dir)


def test_shipped_yolo_fastest_recipe(model_dir_env: Path) -> None:
    model = import_model(load_recipe("yolo-fastest"))
    assert [o.name for o in model.graph.output] == ["yolo_0", "yolo_1"]
    assert resolve_model_path(load_recipe("yolo-fastest")).name == "yolo-fastest-1.1.cfg"


def test_torch_recipe_without_weights(tmp_path: Path) -> None:
    r = recipe({"format": "torch", "factory": "pkg.models:make"})
    assert resolve_weights_path(r) is None
    with pytest.raises(RecipeError, match="no file"):
        resolve_model_path(r)
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(MissingDependencyError, match=r"edgesdk\[torch\]"):
            import_model(r)
