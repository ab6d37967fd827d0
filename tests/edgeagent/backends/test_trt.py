"""TensorRT backend: behaviour without TensorRT (here), fingerprints, and hardware tests.

The ``jetson`` tests build and run real engines; they need TensorRT >= 8.5 and pycuda and
are deselected by default (``pytest -m jetson`` on the device runs them).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

from edgeagent.backends.base import BackendError
from edgeagent.backends.trt import (
    CalibrationBatches,
    LogTail,
    TrtBackend,
    TrtError,
    build_engine,
    device_facts,
    make_entropy_calibrator,
    trt_fingerprint,
    trt_version,
)
from edgeagent.calib_cache import cache_matches, read_cache
from edgeagent.engines import EngineCache, fingerprint_key

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
SHA = hashlib.sha256(b"model").hexdigest()
FACTS = {"tensorrt": "8.5.2.2", "gpu": "Orin", "compute_capability": "8.7"}


@pytest.mark.skipif(HAVE_TRT, reason="checks the behaviour on machines without TensorRT")
def test_without_tensorrt_every_entry_point_says_what_to_install(tmp_path: Path) -> None:
    assert trt_version() is None
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07")
    with pytest.raises(BackendError, match="TensorRT's Python bindings.*--backend ort"):
        build_engine(model, {"precision": "fp16"})
    backend = TrtBackend(b"engine")
    with pytest.raises(BackendError, match="TensorRT"):
        backend.activate()
    assert not backend.active
    with pytest.raises(BackendError, match="not active"):
        backend.infer({})


def test_device_facts_shape() -> None:
    facts = device_facts()
    assert set(facts) == {"tensorrt", "gpu", "compute_capability"}
    if not HAVE_TRT:
        assert facts["tensorrt"] is None


def test_fingerprint_from_build_options_and_facts() -> None:
    fp = trt_fingerprint(SHA, {"precision": "int8", "workspace_mb": 512}, FACTS, calibration_sha256=SHA)
    assert fp["backend"] == "trt" and fp["backend_version"] == "8.5.2.2"
    assert fp["precision"] == "int8" and fp["calibration_sha256"] == SHA and fp["workspace_mb"] == 512
    assert fp["gpu"] == "Orin" and fp["compute_capability"] == "8.7" and fp["dla_core"] is None
    # Calibration does not matter for fp16, so it must not split the cache.
    fp16 = trt_fingerprint(SHA, {"precision": "fp16"}, FACTS, calibration_sha256=SHA)
    assert fp16["calibration_sha256"] is None
    other_trt = trt_fingerprint(SHA, {"precision": "fp16"}, dict(FACTS, tensorrt="10.3.0.30"))
    assert fingerprint_key(other_trt) != fingerprint_key(fp16)
    with pytest.raises(BackendError, match="TensorRT version"):
        trt_fingerprint(SHA, {}, {"tensorrt": None})
    with pytest.raises(BackendError, match="unknown build option"):
        trt_fingerprint(SHA, {"precison": "fp16"}, FACTS)


def test_missing_engine_file_is_reported(tmp_path: Path) -> None:
    backend = TrtBackend(tmp_path / "absent.engine")
    with pytest.raises(BackendError):
        backend.activate()


# --------------------------------------------------------------------------- on a Jetson


def _tiny_model(path: Path, qdq: bool = False) -> Path:
    """Conv(3->8, 3x3) + ReLU + global average pool, input (2, 3, 64, 64); optionally with Q/DQ."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b")
    inits = [weight, bias]
    nodes = []
    conv_in, conv_w = "images", "w"
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(1.0 / 127, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(0, np.int8), "zero"),
            numpy_helper.from_array(np.array(0.6 / 127, np.float32), "w_scale"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["images", "x_scale", "zero"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "x_scale", "zero"], ["xdq"]),
            helper.make_node("QuantizeLinear", ["w", "w_scale", "zero"], ["wq"]),
            helper.make_node("DequantizeLinear", ["wq", "w_scale", "zero"], ["wdq"]),
        ]
        conv_in, conv_w = "xdq", "wdq"
    nodes += [
        helper.make_node("Conv", [conv_in, conv_w, "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [2, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 8, 1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"images": x})[0])


@pytest.fixture()
def jetson() -> str:
    pytest.importorskip("tensorrt", reason="needs TensorRT")
    pytest.importorskip("pycuda.driver", reason="needs pycuda")
    version = trt_version()
    assert version is not None
    return version


@pytest.fixture()
def calib_images(data_dir: Path) -> List[Path]:
    return sorted((data_dir / "coco128" / "images").rglob("*.jpg"))[:16]


def _params() -> Dict[str, Any]:
    from edgesdk.recipe import load_recipe

    return load_recipe("yolov5n").preprocess.model_dump()


@pytest.mark.jetson
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_and_run_matches_onnxruntime(jetson: str, tmp_path: Path, precision: str) -> None:
    model = _tiny_model(tmp_path / "tiny.onnx")
    tail = LogTail()
    engine = build_engine(model, {"precision": precision, "workspace_mb": 64}, log=tail)
    assert len(engine) > 1000
    x = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    with TrtBackend(engine, log=tail) as backend:
        assert [s.name for s in backend.inputs] == ["images"] and backend.inputs[0].shape == (2, 3, 64, 64)
        out = backend.infer({"images": x})["output"]
        again = backend.infer({"images": x})["output"]
    np.testing.assert_allclose(out, _ort(model, x), atol=2e-2 if precision == "fp16" else 1e-4)
    np.testing.assert_array_equal(out, again)


@pytest.mark.jetson
def test_int8_calibration_writes_a_cache_for_this_tensorrt(
    jetson: str, tmp_path: Path, calib_images: List[Path]
) -> None:
    model = _tiny_model(tmp_path / "tiny.onnx")
    shape = (2, 3, 64, 64)
    batches = CalibrationBatches(calib_images, _params(), shape)
    cache_path = tmp_path / "calibration.cache"
    calibrator = make_entropy_calibrator(batches, cache_path, batch_size=2, input_shape=shape)
    engine = build_engine(model, {"precision": "int8", "workspace_mb": 64}, calibration=calibrator)
    assert calibrator.batches_fed == 8 and calibrator.error is None
    cache = read_cache(cache_path)
    assert cache_matches(cache, jetson) and "images" in cache.scales
    x = next(iter(batches))
    with TrtBackend(engine) as backend:
        out = backend.infer({"images": x})["output"]
    reference = _ort(model, x)
    assert float(np.abs(out - reference).max()) < 0.05 * float(np.abs(reference).max()) + 1e-3
    # A second build reads the cache back and does not calibrate.
    again = make_entropy_calibrator(batches, cache_path, batch_size=2, input_shape=shape)
    build_engine(model, {"precision": "int8", "workspace_mb": 64}, calibration=again)
    assert again.batches_fed == 0 and again.cache_used == cache_path


@pytest.mark.jetson
def test_qdq_model_builds_int8_without_calibrator(jetson: str, tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "qdq.onnx", qdq=True)
    engine = build_engine(model, {"precision": "int8", "workspace_mb": 64})
    x = np.random.default_rng(2).random((2, 3, 64, 64), dtype=np.float32)
    with TrtBackend(engine) as backend:
        out = backend.infer({"images": x})["output"]
    np.testing.assert_allclose(out, _ort(model, x), atol=2e-2)
    with pytest.raises(BackendError, match="Q/DQ"):
        build_engine(model, {"precision": "fp16"})


@pytest.mark.jetson
def test_parser_error_carries_tensorrt_log(jetson: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with pytest.raises(TrtError) as info:
        build_engine(bad, {"precision": "fp16"})
    assert "ONNX parser rejected bad.onnx" in str(info.value) and info.value.log_lines


@pytest.mark.jetson
def test_engine_cache_round_trip_and_reload(jetson: str, tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "tiny.onnx")
    options = {"precision": "fp16", "workspace_mb": 64}
    fp = trt_fingerprint(hashlib.sha256(model.read_bytes()).hexdigest(), options, device_facts())
    cache = EngineCache(tmp_path / "cache")
    path = cache.store(fp, build_engine(model, options), {"recipe": "tiny", "build_seconds": 1.0})
    cache.activate("tiny", fingerprint_key(fp))
    assert cache.lookup(fp) == path
    x = np.zeros((2, 3, 64, 64), np.float32)
    with TrtBackend(path) as backend:
        np.testing.assert_allclose(backend.infer({"images": x})["output"], _ort(model, x), atol=2e-2)


@pytest.mark.jetson
@pytest.mark.slow
def test_real_yolov5n_fp16_matches_onnxruntime(
    jetson: str, models_dir: Path, sample_images: Dict[str, Path]
) -> None:
    import cv2

    from edgeagent.vision.preprocess import preprocess

    model = models_dir / "yolov5n_coco" / "yolov5n.onnx"
    image = cv2.imread(str(sample_images["bus"]))
    assert image is not None
    x, _ = preprocess(image, (640, 640), _params())
    x = x[None]
    engine = build_engine(model, {"precision": "fp16", "workspace_mb": 1024})
    with TrtBackend(engine) as backend:
        (name,) = [s.name for s in backend.inputs]
        outputs = backend.infer({name: x})
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    reference = session.run(None, {name: x})
    for got, want in zip(outputs.values(), reference):
        scores_got, scores_want = got[..., 4], np.asarray(want)[..., 4]  # objectness
        assert float(np.abs(scores_got - scores_want).max()) < 0.02
