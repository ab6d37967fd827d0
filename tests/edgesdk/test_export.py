"""Export every shipped recipe that has a real model, with the parity check on real images."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgesdk.errors import ArtifactNotFound, ParityError
from edgesdk.export import export_recipe, list_images
from edgesdk.recipe import load_recipe

REAL = ["yolo-fastest", "yolov5n", "yolox-nano", "retinaface-mnet", "yunet", "ultraface-rfb320"]


@pytest.fixture(scope="module")
def images(data_dir: Path) -> list[Path]:
    return list_images(data_dir / "sample_images")


@pytest.mark.parametrize("name", REAL)
def test_export_real_model(name: str, models_dir: Path, images: list[Path], tmp_path: Path) -> None:
    recipe = load_recipe(name)
    out = tmp_path / f"{name}.onnx"
    result = export_recipe(recipe, model_dir=models_dir, parity_images=images, output=out)
    assert out.is_file()
    assert result.parity is not None and result.parity.passed, result.parity.summary()
    assert result.parity_inputs.startswith("2 image(s)")
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["edgesdk.recipe"] == name
    assert meta["edgesdk.fixes"] == ",".join(result.fixes)
    # static input as the recipe says
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert tuple(dims) == recipe.input.shape


def test_export_is_deterministic(models_dir: Path, images: list[Path], tmp_path: Path) -> None:
    recipe = load_recipe("yolox-nano")
    a = export_recipe(recipe, model_dir=models_dir, check_parity=False, output=tmp_path / "a.onnx")
    b = export_recipe(recipe, model_dir=models_dir, check_parity=False, output=tmp_path / "b.onnx")
    assert a.path is not None and b.path is not None
    assert a.path.read_bytes() == b.path.read_bytes()


def test_parity_failure_is_reported(
    models_dir: Path, images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from onnx import numpy_helper

    import edgesdk.graph.pipeline as pipeline

    real = pipeline.apply_fixes

    def perturbing(model, fixes, ctx):  # a "fix" that changes the numbers: scale one conv weight
        fixed, names = real(model, fixes, ctx)
        init = next(t for t in fixed.graph.initializer if len(t.dims) == 4)
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.5), init.name))
        return fixed, names

    monkeypatch.setattr(pipeline, "apply_fixes", perturbing)
    with pytest.raises(ParityError, match="differs from the original"):
        export_recipe(
            load_recipe("yunet"), model_dir=models_dir, parity_images=images, output=tmp_path / "x.onnx"
        )
    assert not (tmp_path / "x.onnx").exists()


def test_missing_model_file(tmp_path: Path) -> None:
    recipe = load_recipe("yolov8n")
    with pytest.raises(ArtifactNotFound, match="yolov8n"):
        export_recipe(recipe, model_dir=tmp_path)


def test_efficient_nms_export_checks_parity_before_the_plugin(
    models_dir: Path, images: list[Path], tmp_path: Path
) -> None:
    from edgesdk.recipe import override

    base = load_recipe("yolov5n")
    recipe = override(base, {"fixes": [*base.fixes, "efficient-nms"]})
    result = export_recipe(recipe, model_dir=models_dir, parity_images=images, output=tmp_path / "nms.onnx")
    assert result.fixes[-1] == "efficient-nms"
    assert result.parity is not None and result.parity.passed
    assert "checked before efficient-nms" in result.parity_inputs
    model = onnx.load(str(tmp_path / "nms.onnx"))
    assert [n.op_type for n in model.graph.node].count("EfficientNMS_TRT") == 1
    assert [o.name for o in model.graph.output][:1] == ["num_detections"]
