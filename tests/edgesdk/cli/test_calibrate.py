"""`edgesdk calibrate`: JSON and table output on a real model; one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesdk.cli.app import app


def _args(data_dir: Path, models_dir: Path, out: Path) -> list[str]:
    images = str(data_dir / "widerface_val200_416")
    return [
        "calibrate",
        "retinaface-mnet",
        "--images",
        images,
        "--count",
        "2",
        "--model-dir",
        str(models_dir),
        "-o",
        str(out),
    ]


def test_calibrate_json(data_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    args = [*_args(data_dir, models_dir, tmp_path), "--json", "--trt", "8.6", "--single-pass"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recipe"] == "retinaface-mnet" and data["calibrator"] == "mixed"  # the recipe's choice
    assert data["cache"]["header"] == "TRT-8602-EntropyCalibration2"
    assert data["images"]["count"] == 2 and len(data["images"]["chosen"]) == 2
    assert data["statistics"]["passes"] == 1 and data["statistics"]["images"] == 2
    assert data["tensors"][0]["name"] == "input0" and data["tensors"][0]["threshold"] > 0
    # flags describe the threshold in use (mixed moves thresholds after the entropy summary)
    for t in data["tensors"]:
        assert ("saturates" in t["flags"]) == (t["saturation_pct"] > 1.0), t
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calibration.cache",
        "model.qdq.onnx",
        "summary.json",
    ]
    assert json.loads((tmp_path / "summary.json").read_text())["tensors"] == data["tensors"]


def test_calibrate_table(data_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    args = [*_args(data_dir, models_dir, tmp_path), "--calibrator", "percentile"]
    result = CliRunner().invoke(app, [*args, "--all"])
    assert result.exit_code == 0, result.output
    assert (
        "percentile thresholds" in result.stdout
        and "saturated %" in result.stdout
        and "input0" in result.stdout
    )
    # the decoder tail stays in float: its rows say so
    assert "│ yes " in result.stdout and "│ float " in result.stdout
    assert "fewer than 500" in result.stderr and "calibration.cache" in result.stderr
    assert "edgesdk eval retinaface-mnet" in result.stderr
    assert "retinaface-mnet: activation statistics (" in result.stderr  # a log gets a line per phase
    every = result.stdout.count("│ yes ") + result.stdout.count("│ float ")
    assert every == 127 and "tensors shown" not in result.stderr  # retinaface-mnet's 127 tensors
    # by default only the rows worth a look, and a line saying what was left out
    short = CliRunner().invoke(app, args)
    assert short.exit_code == 0, short.output
    rows = short.stdout.count("│ yes ") + short.stdout.count("│ float ")
    assert 1 <= rows < every and f"{rows} of 127 tensors shown" in short.stderr
    assert "--all prints every one" in short.stderr


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_errors_are_one_line(tmp_path: Path, model_dir_env: Path) -> None:
    missing = _run("calibrate", "yolox-nano", "--images", str(tmp_path / "nope"))
    assert (
        missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    assert "folder of .jpg/.png images" in missing.stderr and "EDGESDK_MODEL_DIR" not in missing.stderr
    bad_trt = _run("calibrate", "yolox-nano", "--images", str(tmp_path), "--trt", "seven")
    assert bad_trt.returncode == 1 and "'seven' is not a TensorRT version" in bad_trt.stderr
    assert "hint:" in bad_trt.stderr and "Traceback" not in bad_trt.stderr
    bad_calibrator = _run("calibrate", "yolox-nano", "--images", str(tmp_path), "--calibrator", "kl")
    assert bad_calibrator.returncode == 1 and "unknown calibrator 'kl'" in bad_calibrator.stderr


@pytest.mark.slow
def test_calibrate_sensitivity_suggests_keep_fp(data_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    images = str(data_dir / "widerface_val200_416")
    args = [
        "calibrate",
        "ultraface-rfb320",
        "--images",
        images,
        "--count",
        "2",
        "--model-dir",
        str(models_dir),
    ]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path), "--sensitivity", "2"])
    assert result.exit_code == 0, result.output
    assert "keep_fp:" in result.stdout and "most sensitive" in result.stdout
    data = json.loads((tmp_path / "summary.json").read_text())
    ranked = data["sensitivity"]
    assert len(ranked) == len(data["qdq"]["activations"]) and ranked[0]["error"] >= ranked[-1]["error"]
    assert data["suggested_keep_fp"] and set(ranked[0]["consumers"]) <= set(data["suggested_keep_fp"])
