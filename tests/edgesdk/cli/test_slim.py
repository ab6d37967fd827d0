"""`edgesdk slim`: dry run, apply + write, reviewed plans, mAP, one-line errors (real models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
from typer.testing import CliRunner

from edgesdk.cli.app import app
from edgesdk.errors import PruneError, RecipeError


def _run(models_dir: Path, *args: str):
    return CliRunner().invoke(app, ["slim", "yolo-fastest", "--model-dir", str(models_dir), *args])


def test_dry_run_json_lists_groups_and_writes_nothing(models_dir: Path, tmp_path: Path) -> None:
    result = _run(models_dir, "--ratio", "0.3", "--dry-run", "--json", "--latency-runs", "0",
                  "--save-plan", str(tmp_path / "plan.json"))  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dry_run"] and data["after"] is None and data["method"] == "l1"
    plan = data["plan"]
    assert plan["removed_flops"] >= 0.3 and data["before"]["flops"] == plan["flops_before"]
    heads = [g for g in plan["groups"] if g["reasons"]]
    assert {g["reasons"][0] for g in heads} == {"feeds graph output 'yolo_0'", "feeds graph output 'yolo_1'"}
    assert (tmp_path / "plan.json").is_file() and not list(tmp_path.glob("*.onnx"))


def test_slim_writes_a_valid_smaller_model(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "slim.onnx"
    result = _run(models_dir, "--ratio", "0.5", "--scope", "uniform", "-o", str(out), "--latency-runs", "2")
    assert result.exit_code == 0, result.output
    assert "GFLOPs" in result.stdout and "latency ms" in result.stdout
    # not a terminal (a log): one line per phase instead of the live status line
    assert "slimming yolo-fastest: plan" in result.stderr and "slimming yolo-fastest: write" in result.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    dims = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert dims == {"yolo_0": [1, 255, 10, 10], "yolo_1": [1, 255, 20, 20]}
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["edgesdk.slim"])["scope"] == "uniform"


def test_reviewed_plan_is_applied(models_dir: Path, tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    assert _run(models_dir, "--dry-run", "--latency-runs", "0", "--save-plan", str(plan_path)).exit_code == 0
    plan = json.loads(plan_path.read_text())
    for group in plan["groups"]:
        if group["removed"]:
            group["kept"] = group["kept"][:1]  # a reviewer cuts harder by hand
    plan_path.write_text(json.dumps(plan))
    out = tmp_path / "edited.onnx"
    result = _run(models_dir, "--plan", str(plan_path), "-o", str(out), "--latency-runs", "0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["after"]["flops"] < plan["flops_after"]


def test_map_before_and_after(models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    coco = str(data_dir / "coco_val2017_first128")
    result = _run(models_dir, "--ratio", "0.2", "--data", coco, "--limit", "2", "--latency-runs", "0",
                  "-o", str(tmp_path / "m.onnx"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 0 < data["before"]["map50"] <= 1 and data["after"]["map50"] is not None
    assert data["data"] == {"folder": coco, "limit": 2}


def test_errors_are_typed(models_dir: Path) -> None:
    bn = CliRunner().invoke(app, ["slim", "yolox-nano", "--model-dir", str(models_dir), "--method", "bn",
                                  "--dry-run", "--latency-runs", "0"])  # fmt: skip
    assert isinstance(bn.exception, PruneError) and "no BatchNormalization" in str(bn.exception)
    ratio = _run(models_dir, "--ratio", "1.5", "--dry-run")
    assert isinstance(ratio.exception, RecipeError) and "slim.ratio" in str(ratio.exception)


def test_error_is_one_line_without_traceback(models_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesdk",
            "slim",
            "yolox-nano",
            "--model-dir",
            str(models_dir),
            "--ratio",
            "0.95",
            "--dry-run",
            "--latency-runs",
            "0",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "error:" in proc.stderr and "at most" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_thinet_samples_images_and_refits(models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    images = str(data_dir / "sample_images")
    result = _run(models_dir, "--method", "thinet", "--ratio", "0.2", "--images", images,
                  "-o", str(tmp_path / "t.onnx"), "--latency-runs", "0", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["calibration"] == {"images": images, "count": 2}
    assert data["plan"]["reconstruct"] and any("least squares" in n for n in data["notes"])
    assert data["ratios"]["flops"] <= 0.8
    onnx.checker.check_model(onnx.load(str(tmp_path / "t.onnx")))


def test_sss_removes_residual_branches(models_dir: Path, data_dir: Path) -> None:
    result = _run(models_dir, "--method", "sss", "--ratio", "0.2", "--images", str(data_dir / "sample_images"),
                  "--dry-run", "--latency-runs", "0", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    removed = [b for b in plan["blocks"] if b["removed"]]
    assert removed and plan["removed_flops"] >= 0.2 and all(g["removed"] == 0 for g in plan["groups"])


def test_data_methods_need_images(models_dir: Path) -> None:
    result = _run(models_dir, "--method", "lasso", "--dry-run", "--latency-runs", "0")
    assert isinstance(result.exception, PruneError) and "no image folder" in str(result.exception)


def test_images_enable_refit_for_l1(models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    result = _run(models_dir, "--ratio", "0.2", "--images", str(data_dir / "sample_images"), "--joint", "20",
                  "-o", str(tmp_path / "r.onnx"), "--latency-runs", "0", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["method"] == "l1" and data["plan"]["reconstruct"] and data["calibration"]["count"] == 2
    assert any("(20 Adam steps per block)" in n for n in data["notes"])


def test_latency_target_keeps_the_flops_ratio(models_dir: Path, data_dir: Path) -> None:
    result = _run(models_dir, "--method", "thinet", "--target", "latency", "--ratio", "0.2",
                  "--images", str(data_dir / "sample_images"), "--dry-run", "--latency-runs", "0", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert plan["target"] == "latency"
    assert 0.2 <= plan["removed_flops"] < 0.3  # --ratio still counts FLOPs
    before, after = plan["predicted_ms"]
    assert 0 < after < before


def test_latency_hint_only_when_latency_lags_flops() -> None:
    from edgesdk.cli.slim import _latency_hint

    hint = _latency_hint({"params": 0.7, "flops": 0.65, "latency": 0.99}, round_to=8)
    assert hint is not None and "0.99 vs 0.65" in hint and "--round-to 16" in hint
    assert _latency_hint({"flops": 0.65, "latency": 0.75}, round_to=8) is None  # close enough
    assert _latency_hint({"flops": 0.65, "latency": 0.99}, round_to=16) is None  # already aligned
    assert _latency_hint({"flops": 0.65, "latency": None}, round_to=8) is None  # not measured
