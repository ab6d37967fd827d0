"""int8 preview: fp32 and Q/DQ models scored on the same labelled images."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk.errors import CalibrationError
from edgesdk.quant.calibrate import calibrate
from edgesdk.quant.preview import int8_preview
from edgesdk.recipe import load_recipe


def test_preview_per_calibrator(models_dir: Path, data_dir: Path) -> None:
    recipe = load_recipe("yolo-fastest")
    phases: set[str] = set()
    preview = int8_preview(
        recipe,
        data_dir / "coco_val2017_first128",
        calibrators=["minmax", "percentile"],
        count=2,
        limit=4,
        model_dir=models_dir,
        progress=lambda phase, done, total: phases.add(phase),
    )
    assert phases == {"select", "statistics", "fp32", "int8 minmax", "int8 percentile"}
    assert preview.fp32.images == 4 and set(preview.int8) == {"minmax", "percentile"}
    assert all(0 < r.map50 <= 1 for r in preview.int8.values())
    assert preview.int8["minmax"].map50 != preview.fp32.map50  # the Q/DQ model really ran
    data = preview.to_json()
    assert data["best"] in ("minmax", "percentile") and data["calibration"]["same_images_as_eval"]
    drop = data["int8"]["minmax"]["drop_map50_points"]
    assert drop == pytest.approx(100 * (preview.fp32.map50 - preview.int8["minmax"].map50), abs=1e-3)


def test_preview_from_a_calibration_folder(models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    recipe = load_recipe("yolo-fastest")
    calibrate(recipe, data_dir / "coco128", count=3, calibrator="mse", model_dir=models_dir, output=tmp_path)
    preview = int8_preview(
        recipe, data_dir / "coco_val2017_first128", calibration=tmp_path, limit=3, model_dir=models_dir
    )
    assert list(preview.int8) == ["mse"] and preview.calibration["folder"] == str(tmp_path)
    with pytest.raises(CalibrationError, match="cannot be combined"):
        int8_preview(recipe, data_dir, calibration=tmp_path, calibrators=["entropy"])
