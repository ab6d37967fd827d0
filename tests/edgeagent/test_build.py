"""``edgeagent build`` on the local machine (onnxruntime): cache hit, failure keeps the old engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeagent.engines import EngineCache
from edgesdk.agentpkg import write_agent_zip
from edgesdk.bundle import write_bundle
from edgesdk.recipe import parse_recipe

RECIPE = {
    "name": "yunet-small",
    "task": "face",
    "model": {"format": "onnx", "path": "yunet_n/yunet_n_320_320.onnx"},
    "input": {"name": "input", "shape": [1, 3, 320, 320]},
    "preprocess": {"resize": "top-left-pad", "pad_value": 0, "color": "bgr", "scale": 1.0},
    "postprocess": {"decoder": "yunet"},
    "fixes": ["cleanup"],
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pyz = tmp_path_factory.mktemp("agent") / "edgeagent.pyz"
    write_agent_zip(pyz)
    return pyz


def _run(agent: Path, *args: str) -> tuple[int, list[dict]]:
    out = subprocess.run(
        [sys.executable, "-I", str(agent), *args, "--json"], capture_output=True, text=True, timeout=120
    )
    events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return out.returncode, events


def _result(events: list[dict]) -> dict:
    return next(e["data"] for e in events if e["event"] == "result")


def test_build_then_cache_hit(agent: Path, models_dir: Path, tmp_path: Path) -> None:
    recipe = parse_recipe(RECIPE)
    bundle = write_bundle(recipe, [("model", models_dir / RECIPE["model"]["path"])], tmp_path / "bundle")
    home = tmp_path / "home"
    code, events = _run(agent, "build", str(bundle.root), "--home", str(home))
    assert code == 0, events
    first = _result(events)
    assert first["backend"] == "ort" and first["cached"] is False
    assert first["precision"] == "fp16" and first["effective_precision"] == "fp32"
    assert any(e["event"] == "log" and e["level"] == "warning" for e in events)
    assert Path(first["engine_path"]).is_file()
    code, events = _run(agent, "build", str(bundle.root), "--home", str(home))
    second = _result(events)
    assert code == 0 and second["cached"] is True and second["engine"] == first["engine"]
    # another precision is another fingerprint
    code, events = _run(agent, "build", str(bundle.root), "--home", str(home), "--precision", "fp32")
    assert code == 0 and _result(events)["engine"] != first["engine"]
    assert EngineCache(home / "engines").active("yunet-small").key == _result(events)["engine"]


def test_failed_build_keeps_previous_engine(agent: Path, models_dir: Path, tmp_path: Path) -> None:
    recipe = parse_recipe(RECIPE)
    home = tmp_path / "home"
    good = write_bundle(recipe, [("model", models_dir / RECIPE["model"]["path"])], tmp_path / "good")
    code, events = _run(agent, "build", str(good.root), "--home", str(home), "--precision", "fp32")
    assert code == 0
    key = _result(events)["engine"]
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"\x08\x07 this is not an onnx model")
    bad = write_bundle(recipe, [("model", garbage)], tmp_path / "bad")
    code, events = _run(agent, "build", str(bad.root), "--home", str(home), "--precision", "fp32")
    assert code == 4
    error = next(e for e in events if e["event"] == "error")
    assert error["kind"] == "BuildFailed" and "yunet-small" in error["message"]
    assert EngineCache(home / "engines").active("yunet-small").key == key


def test_corrupt_bundle_file(agent: Path, models_dir: Path, tmp_path: Path) -> None:
    bundle = write_bundle(
        parse_recipe(RECIPE), [("model", models_dir / RECIPE["model"]["path"])], tmp_path / "b"
    )
    entry = bundle.files[0]
    bundle.path_of(entry.sha256).write_bytes(b"tampered")
    code, events = _run(agent, "build", str(bundle.root), "--home", str(tmp_path / "home"))
    assert code == 2
    assert "missing or corrupt" in next(e for e in events if e["event"] == "error")["message"]


def test_no_such_backend(agent: Path, tmp_path: Path, models_dir: Path) -> None:
    bundle = write_bundle(
        parse_recipe(RECIPE), [("model", models_dir / RECIPE["model"]["path"])], tmp_path / "b"
    )
    code, events = _run(agent, "build", str(bundle.root), "--home", str(tmp_path / "h"), "--backend", "trt")
    assert code == 3
    assert "not available" in next(e for e in events if e["event"] == "error")["message"]


def test_int8_on_ort_uses_the_qdq_model(agent: Path, models_dir: Path, tmp_path: Path) -> None:
    recipe = parse_recipe({**RECIPE, "build": {"precision": "int8"}})
    fp32 = models_dir / RECIPE["model"]["path"]
    qdq = models_dir / "yunet_n" / "yunet_n_640_640.onnx"  # any other valid model stands in for the Q/DQ file
    bundle = write_bundle(recipe, [("model", fp32), ("qdq_model", qdq)], tmp_path / "b")
    code, events = _run(agent, "build", str(bundle.root), "--home", str(tmp_path / "h"))
    data = _result(events)
    assert code == 0 and data["effective_precision"] == "int8"
    assert not any(e["event"] == "log" and e["level"] == "warning" for e in events)
    # without a Q/DQ model, int8 on onnxruntime says it runs fp32
    plain = write_bundle(recipe, [("model", fp32)], tmp_path / "p")
    code, events = _run(agent, "build", str(plain.root), "--home", str(tmp_path / "h"))
    assert code == 0 and _result(events)["effective_precision"] == "fp32"
    warning = next(e for e in events if e["event"] == "log" and e["level"] == "warning")
    assert "edgesdk calibrate" in warning["message"] and "--calibration OUT" in warning["message"]


def test_calibration_digest(models_dir: Path, tmp_path: Path) -> None:
    from edgeagent.build import calibration_digest
    from edgeagent.manifest import load_manifest

    recipe = parse_recipe(RECIPE)
    model = models_dir / RECIPE["model"]["path"]
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    none = load_manifest(str(write_bundle(recipe, [("model", model)], tmp_path / "n").root))
    assert calibration_digest(none) is None
    ab = load_manifest(
        str(
            write_bundle(
                recipe,
                [("model", model), ("calibration_image", a), ("calibration_image", b)],
                tmp_path / "ab",
            ).root
        )
    )
    ba = load_manifest(
        str(
            write_bundle(
                recipe,
                [("model", model), ("calibration_image", b), ("calibration_image", a)],
                tmp_path / "ba",
            ).root
        )
    )
    assert calibration_digest(ab) == calibration_digest(ba) is not None
    cache = tmp_path / "c.cache"
    cache.write_bytes(b"TRT-8502-EntropyCalibration2\n")
    withcache = load_manifest(
        str(write_bundle(recipe, [("model", model), ("calibration_cache", cache)], tmp_path / "c").root)
    )
    assert calibration_digest(withcache) == withcache.files("calibration_cache")[0]["sha256"]
