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


def test_parity_failure_is_reported(models_dir: Path, images: list[Path], tmp_path: Path) -> None:
    recipe = load_recipe("yolox-nano")
    strict = recipe.model_copy(
        update={"export": recipe.export.model_copy(update={"parity_atol": 1e-12, "parity_rtol": 0.0})}
    )
    # folding constants reorders float math slightly; at atol 1e-12 some output must differ
    try:
        result = export_recipe(strict, model_dir=models_dir, parity_images=images, output=tmp_path / "x.onnx")
    except ParityError as err:
        assert "differs from the original" in str(err)
        assert not (tmp_path / "x.onnx").exists()
    else:  # bit-exact export: then the check must say so
        assert result.parity is not None and result.parity.passed


def test_missing_model_file(tmp_path: Path) -> None:
    recipe = load_recipe("yolov8n")
    with pytest.raises(ArtifactNotFound, match="yolov8n"):
        export_recipe(recipe, model_dir=tmp_path)
