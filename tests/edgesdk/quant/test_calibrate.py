"""`calibrate` end to end on every real model: cache, Q/DQ model and summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeagent.calib_cache import read_cache, write_cache
from edgeagent.vision.preprocess import preprocess_batch
from edgesdk.errors import ArtifactNotFound, CalibrationError
from edgesdk.graph.io import load_model, run_onnxruntime, to_graph
from edgesdk.quant.calibrate import CalibrationResult, calibrate, finish, load_qdq
from edgesdk.recipe import load_recipe

MODELS = {
    "yolox-nano": "coco_val2017_first128",
    "yolov5n": "coco_val2017_first128",
    "yolo-fastest": "coco128",
    "retinaface-mnet": "widerface_val200_416",
    "ultraface-rfb320": "widerface_val200_416",
    "yunet": "widerface_val200_416",
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_real_model(name: str, models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    recipe = load_recipe(name)
    stages: set[str] = set()
    result = calibrate(
        recipe,
        data_dir / MODELS[name],
        count=2,
        model_dir=models_dir,
        output=tmp_path,
        progress=lambda phase, done, total: stages.add(phase),
    )
    assert stages == {"select", "statistics"}
    data = (tmp_path / "calibration.cache").read_bytes()
    cache = read_cache(data)
    assert write_cache(cache) == data and cache.version == 8502 and cache.algorithm == "EntropyCalibration2"
    exported = result.prepared.exported.model
    names = set(to_graph(exported).tensors())
    assert set(cache.scales) <= names and len(cache.scales) > 20
    assert all(scale > 0 for scale in cache.scales.values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["recipe"] == name and summary["images"]["count"] == 2
    assert summary["cache"]["tensors"] == len(cache.scales)
    assert {t["name"] for t in summary["tensors"]} <= names
    qdq = load_model(tmp_path / "model.qdq.onnx")
    ops = [n.op_type for n in qdq.graph.node]
    assert ops.count("QuantizeLinear") >= 10 and ops.count("DequantizeLinear") == ops.count("QuantizeLinear")
    image = cv2.imread(str(result.prepared.selection.chosen[0]))
    feed, _ = preprocess_batch([image], recipe.input.hw, recipe.resolved()["preprocess"])
    input_name = exported.graph.input[0].name
    want = run_onnxruntime(exported, {input_name: feed})
    got = run_onnxruntime(qdq, {input_name: feed})
    assert list(got) == list(want)
    for key in want:
        assert got[key].shape == want[key].shape and np.isfinite(got[key]).all()


@pytest.fixture(scope="module")
def yolox(
    models_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CalibrationResult, Path]:
    out = tmp_path_factory.mktemp("yolox-int8")
    result = calibrate(
        load_recipe("yolox-nano"),
        data_dir / "coco_val2017_first128",
        count=3,
        calibrator="entropy",  # the recipe's own is mixed
        model_dir=models_dir,
        trt="10.3",
        output=out,
    )
    return result, out


def test_trt_header_and_float_tail(yolox: tuple[CalibrationResult, Path]) -> None:
    result, out = yolox
    cache = read_cache(out / "calibration.cache")
    assert cache.version == 100300
    summary = json.loads((out / "summary.json").read_text())
    # the head's final Concat/Reshape/Transpose/output are kept in float: not in the cache
    assert "output" in summary["cache"]["left_out_float"] and "output" not in cache.scales
    assert "images" in cache.scales
    first_conv = next(n for n in result.prepared.exported.model.graph.node if n.op_type == "Conv")
    assert first_conv.input[0] == "/backbone/backbone/stem/Concat_output_0"  # the Focus stem's Concat
    assert first_conv.name in summary["qdq"]["activations"][first_conv.input[0]]["consumers"]


def test_other_calibrators_reuse_the_statistics(yolox: tuple[CalibrationResult, Path]) -> None:
    result, _ = yolox
    minmax = finish(result.prepared, "minmax")
    entropy = {t.name: t.threshold for t in result.tensors if t.threshold}
    for t in minmax.tensors:
        if t.threshold is not None:
            assert t.threshold == t.amax and t.saturation == 0.0
            assert entropy[t.name] <= t.amax * 2048.5 / 2048
    with pytest.raises(CalibrationError, match="unknown calibrator"):
        finish(result.prepared, "kl")


def test_load_qdq(yolox: tuple[CalibrationResult, Path], tmp_path: Path) -> None:
    _, out = yolox
    model, summary = load_qdq(out, load_recipe("yolox-nano"))
    assert summary["calibrator"] == "entropy" and model.graph.node
    with pytest.raises(CalibrationError, match="calibrated for recipe 'yolox-nano'"):
        load_qdq(out, load_recipe("yunet"))
    with pytest.raises(ArtifactNotFound, match="model.qdq.onnx"):
        load_qdq(tmp_path)


def test_bad_options_fail_before_the_long_part(tmp_path: Path) -> None:
    recipe = load_recipe("yolox-nano")
    with pytest.raises(CalibrationError, match="--trt"):
        calibrate(recipe, tmp_path, trt="7")
    with pytest.raises(CalibrationError, match="unknown calibrator"):
        calibrate(recipe, tmp_path, calibrator="kl")
