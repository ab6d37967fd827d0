"""`edgesdk inspect` and `edgesdk fixes` through the real Typer app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from edgesdk.cli.app import app
from edgesdk.errors import ModelFormatError


def test_inspect_onnx_file(models_dir: Path) -> None:
    path = models_dir / "yolov5n_coco" / "yolov5n.onnx"
    result = CliRunner().invoke(app, ["inspect", str(path), "--trt", "8.5"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "images" in out and "1x3x640x640" in out and "1x25200x85" in out
    assert "params 1,867,405" in out and "GFLOPs 4.468" in out
    assert "TensorRT 8.5 lint" in out and "dynamic-resize" in out and "/model.11/Resize" in out


def test_inspect_recipe_json(models_dir: Path) -> None:
    args = ["inspect", "ultraface-rfb320", "--model-dir", str(models_dir), "--trt", "10.3", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["inputs"] == [{"name": "input", "shape": [1, 3, 240, 320], "dtype": "float32"}]
    assert [o["name"] for o in data["outputs"]] == ["scores", "boxes"]
    assert data["params"] == 281_100 and data["trt"] == "10.3" and data["opset"] == 9
    assert "initializer-input" in {f["rule"] for f in data["lint"]}
    assert data["source"].startswith("recipe ultraface-rfb320")


def test_inspect_without_trt_has_no_lint(models_dir: Path) -> None:
    path = models_dir / "yunet_n" / "yunet_n_640_640.onnx"
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["lint"] == [] and data["trt"] is None and len(data["outputs"]) == 12


def test_bad_trt_version_is_a_usage_error(models_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["inspect", str(models_dir / "yunet_n" / "yunet_n_640_640.onnx"), "--trt", "9.0"]
    )
    assert result.exit_code == 2
    assert "8.5" in result.output and "10.3" in result.output


def test_strict_fails_on_lint_errors(tmp_path: Path) -> None:
    import numpy as np
    import onnx_graphsurgeon as gs

    from edgesdk.graph.io import save_model, to_model

    x, y = gs.Variable("x", dtype=np.float32, shape=[4]), gs.Variable("y", dtype=np.float32, shape=[4])
    graph = gs.Graph(
        nodes=[gs.Node("Unique", name="u", inputs=[x], outputs=[y])], inputs=[x], outputs=[y], opset=13
    )
    path = save_model(to_model(graph), tmp_path / "unique.onnx")
    relaxed = CliRunner().invoke(app, ["inspect", str(path), "--trt", "8.6"])
    assert relaxed.exit_code == 0 and "unsupported-op" in relaxed.stdout
    strict = CliRunner().invoke(app, ["inspect", str(path), "--trt", "8.6", "--strict"])
    assert strict.exit_code == 1


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model")
    result = CliRunner().invoke(app, ["inspect", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ModelFormatError)
    proc = subprocess.run(
        [sys.executable, "-m", "edgesdk", "inspect", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "bad.onnx is not a readable ONNX model" in proc.stderr and "Traceback" not in proc.stderr


def test_fixes_lists_every_fix() -> None:
    result = CliRunner().invoke(app, ["fixes", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r["doc"] for r in json.loads(result.stdout)}
    expected = {
        "cleanup", "static-shape", "fold-constants", "drop-initializer-inputs", "infer-shapes", "int64-to-int32",
        "normalize-resize", "strip-identity", "rename-outputs", "efficient-nms",
    }  # fmt: skip
    assert expected <= set(rows)
    assert rows["strip-identity"].startswith("Remove Identity")
    table = CliRunner().invoke(app, ["fixes"])
    assert table.exit_code == 0 and "normalize-resize" in table.stdout
