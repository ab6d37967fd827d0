"""calibrate -> deploy --precision int8 --calibration: the bundle carries the cache, the Q/DQ model and
the chosen images; on onnxruntime the device runs the Q/DQ model in int8."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk.deploy.flow import deploy
from edgesdk.deploy.inventory import LOCAL
from edgesdk.errors import CalibrationError
from edgesdk.quant.calibrate import calibrate
from edgesdk.recipe import load_recipe, override


@pytest.fixture()
def recipe():
    return override(
        load_recipe("yunet"), {"model.path": "yunet_n/yunet_n_320_320.onnx", "input.shape": [1, 3, 320, 320]}
    )


def test_int8_deploy_sends_calibration(recipe, models_dir: Path, data_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    out = tmp_path / "calib"
    images = data_dir / "widerface_val200_416" / "images"
    calibrate(recipe, images, count=8, model_dir=models_dir, output=out)
    int8 = override(recipe, {"build.precision": "int8"})
    [report] = deploy(int8, [LOCAL], tmp_path / "w", model_dir=models_dir, calibration=out)
    assert report.ok, report.error
    assert report.files_sent == 1 + 1 + 1 + 1 + 8 + 1  # agent, model, qdq, cache, 8 images, manifest
    assert report.build["effective_precision"] == "int8"


def test_calibration_of_another_recipe_is_refused(
    recipe, models_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "calib"
    calibrate(recipe, data_dir / "widerface_val200_416" / "images", count=4, model_dir=models_dir, output=out)
    other = override(recipe, {"name": "not-yunet"})
    with pytest.raises(CalibrationError, match="calibrated for recipe"):
        deploy(other, [LOCAL], tmp_path / "w", model_dir=models_dir, calibration=out, dry_run=True)
