"""`edgesdk eval --precision int8`: side-by-side table and JSON; int8-only options need int8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from edgesdk.cli.app import app


def _args(data_dir: Path, models_dir: Path) -> list[str]:
    data = str(data_dir / "coco_val2017_first128")
    return ["eval", "yolo-fastest", "--data", data, "--model-dir", str(models_dir), "--limit", "4"]


def test_int8_json(data_dir: Path, models_dir: Path) -> None:
    args = [*_args(data_dir, models_dir), "--precision", "int8", "--count", "2", "--calibrator", "minmax,mse"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["int8"]) == {"minmax", "mse"} and data["images"] == 4
    assert 0 < data["fp32"]["map50"] <= 1 and data["calibration"]["images"] == 2


def test_int8_table(data_dir: Path, models_dir: Path) -> None:
    args = [*_args(data_dir, models_dir), "--precision", "int8", "--count", "2", "--calibrator", "percentile"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fp32 vs int8" in result.stdout and "percentile" in result.stdout and "Δ mAP50" in result.stdout
    assert "same folder (optimistic)" in result.stdout


def test_int8_options_need_int8(data_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgesdk", *_args(data_dir, models_dir), "--calibration", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2 and "--calibration only apply with --precision int8" in proc.stderr
