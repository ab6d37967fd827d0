"""`edgesdk eval`: JSON and table output with a real model; one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from edgesdk.cli.app import app


def _coco_args(data_dir: Path, models_dir: Path) -> list[str]:
    coco = str(data_dir / "coco_val2017_first128")
    return ["eval", "yolox-nano", "--data", coco, "--model-dir", str(models_dir), "--limit", "3"]


def test_eval_json(data_dir: Path, models_dir: Path) -> None:
    result = CliRunner().invoke(app, [*_coco_args(data_dir, models_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["images"] == 3 and 0 < data["map50"] <= 1 and 0 < data["map50_95"] <= data["map50"]
    assert data["model"] == "yolox-nano" and data["protocol"]["max_detections"] == 300


def test_eval_table(data_dir: Path, models_dir: Path) -> None:
    result = CliRunner().invoke(app, _coco_args(data_dir, models_dir))
    assert result.exit_code == 0, result.output
    assert "mAP50-95" in result.stdout and "yolox-nano" in result.stdout


def test_eval_empty_folder_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "edgesdk", "eval", "yolox-nano", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "no images" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_eval_help() -> None:
    result = CliRunner().invoke(app, ["eval", "--help"])
    assert result.exit_code == 0 and "--min-size" in result.output
