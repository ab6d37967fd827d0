"""Thresholds: the vectorised entropy search against a straightforward loop, TensorRT's own
cache, and brute force for percentile / mse; the calibrator registry."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from edgesdk.errors import CalibrationError, EdgeSdkInternalError
from edgesdk.quant.calibrators import (
    CalibratorOptions,
    calibrator_names,
    entropy_kl,
    entropy_threshold,
    get_calibrator,
    kl_at,
    mse_threshold,
    percentile_threshold,
    register_calibrator,
)
from edgesdk.quant.histogram import FINE_BINS, HIST_BINS, accumulate


def reference_entropy(hist: np.ndarray, amax: float) -> tuple[float, float]:
    """Migacz (GTC 2017) step by step: one loop iteration per candidate threshold.

    For i in 128..2048: P = first i bins with the outliers added to the last one; Q = the
    first i bins (no outliers) merged into 128 levels (i // 128 bins each, the last level
    takes the rest) and spread back evenly over the bins where P is non-zero; normalise;
    KL(P || Q) (infinite when Q is 0 where P is not). Threshold (m + 0.5) * bin width.
    """
    h = np.asarray(hist, dtype=np.float64)
    best_kl, best_i = np.inf, len(h)
    for i in range(128, len(h) + 1):
        p = h[:i].copy()
        p[i - 1] += h[i:].sum()
        merged = i // 128
        level_of_bin = np.minimum(np.arange(i) // merged, 127)
        level_count = np.bincount(level_of_bin, weights=h[:i], minlength=128)
        level_nonzero = np.bincount(level_of_bin, weights=(p > 0).astype(np.float64), minlength=128)
        q = np.zeros(i)
        spread = p > 0
        q[spread] = level_count[level_of_bin[spread]] / level_nonzero[level_of_bin[spread]]
        if q.sum() == 0:
            continue
        p, q = p / p.sum(), q / q.sum()
        if np.any(q[spread] == 0):
            continue
        kl = float(np.sum(p[spread] * np.log(p[spread] / q[spread])))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * amax / len(h), best_kl


def _hist(values: np.ndarray, bins: int = HIST_BINS) -> tuple[np.ndarray, float]:
    amax = float(np.abs(values).max())
    hist, _ = np.histogram(np.abs(values), bins=bins, range=(0.0, amax))
    return hist.astype(np.int64), amax


SYNTHETIC = {
    "gaussian": lambda rng: rng.standard_normal(200_000),
    "laplace": lambda rng: rng.laplace(size=200_000),
    "relu-with-outliers": lambda rng: np.concatenate(
        [np.maximum(rng.standard_normal(200_000), 0), rng.uniform(20, 40, 30)]
    ),
    "sparse-tail": lambda rng: np.concatenate([rng.exponential(1.0, 100_000), [50.0, 80.0]]),
}


@pytest.mark.parametrize("kind", sorted(SYNTHETIC))
def test_vectorised_entropy_matches_the_loop(kind: str) -> None:
    hist, amax = _hist(SYNTHETIC[kind](np.random.default_rng(7)))
    ours, ours_kl = entropy_threshold(hist, amax)
    ref, ref_kl = reference_entropy(hist, amax)
    assert ours == pytest.approx(ref, rel=0.02)
    assert ours_kl == pytest.approx(ref_kl, rel=1e-6, abs=1e-12)


def test_every_candidate_divergence_matches_the_loop() -> None:
    hist, _ = _hist(SYNTHETIC["laplace"](np.random.default_rng(3)), bins=512)  # fewer bins: quick
    kl = entropy_kl(hist)
    assert kl.shape == (512 - 127,)
    for index in (0, 1, 100, 200, 384):
        assert kl[index] == pytest.approx(_single_kl(hist, 128 + index), rel=1e-9, abs=1e-12)


def _single_kl(hist: np.ndarray, i: int) -> float:
    h = hist.astype(np.float64)
    p = h[:i].copy()
    p[i - 1] += h[i:].sum()
    merged = i // 128
    q = np.zeros(i)
    for level in range(128):
        start, end = level * merged, (i if level == 127 else (level + 1) * merged)
        nonzero = p[start:end] > 0
        if nonzero.any():
            q[start:end][nonzero] = h[start:end].sum() / nonzero.sum()
    p, q = p / p.sum(), q / q.sum()
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))


def test_entropy_of_an_empty_histogram_is_undefined_and_falls_back_to_max() -> None:
    assert np.isinf(entropy_kl(np.zeros(HIST_BINS))).all()
    threshold, kl = entropy_threshold(np.zeros(HIST_BINS), 2.0)
    assert threshold == pytest.approx(2048.5 / 2048 * 2.0) and np.isinf(kl)


def test_saturated_sigmoid_reproduces_tensorrt_scale(data_dir: Path) -> None:
    """A real TensorRT 8.5 cache stores saturated Sigmoid outputs at (2048 + 0.5) / 2048 / 127."""
    cache = data_dir / "jetson_samples" / "calib_cache" / "yolov5s_jetson_jp5.1_trt8502.cache"
    line = next(x for x in cache.read_text().splitlines() if x.startswith("/0/model.0/act/Sigmoid_output_0:"))
    rng = np.random.default_rng(0)
    sigmoid = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 8.0, 500_000)))  # many values round to exactly 1.0
    hist, amax = _hist(sigmoid.astype(np.float32))
    assert amax == 1.0
    threshold, _ = entropy_threshold(hist, amax)
    ours = struct.pack(">f", np.float32(threshold) / np.float32(127)).hex()
    assert ours == line.rsplit(": ", 1)[1] == "3c010a14"


def test_kl_at_is_the_minimum_for_the_entropy_threshold() -> None:
    hist, amax = _hist(SYNTHETIC["laplace"](np.random.default_rng(1)))
    threshold, kl = entropy_threshold(hist, amax)
    assert kl_at(hist, amax, threshold) == pytest.approx(kl)
    assert kl_at(hist, amax, amax) >= kl  # minmax keeps every bin: never better
    assert kl_at(hist, amax, 0.0) >= kl  # clamped to 128 bins


def test_percentile_threshold_matches_numpy() -> None:
    values = np.abs(np.random.default_rng(2).standard_normal(300_000))
    hist, amax = _hist(values, bins=FINE_BINS)
    for pct in (50.0, 99.0, 99.99):
        assert percentile_threshold(hist, amax, pct) == pytest.approx(
            np.percentile(values, pct), abs=2 * amax / FINE_BINS
        )
    assert percentile_threshold(hist, amax, 100.0) == amax


def _true_mse(values: np.ndarray, threshold: float) -> float:
    step = threshold / 127
    quantised = np.clip(np.round(values / step), -127, 127) * step
    return float(np.mean((values - quantised) ** 2))


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "relu-with-outliers"])
def test_mse_threshold_is_near_brute_force(kind: str) -> None:
    values = SYNTHETIC[kind](np.random.default_rng(5))
    hist, amax = _hist(values, bins=FINE_BINS)
    ours = mse_threshold(hist, amax)
    grid = np.linspace(amax / 200, amax, 400)
    errors = [_true_mse(values, t) for t in grid]
    best = float(grid[int(np.argmin(errors))])
    # same error within 5 % (the error surface is flat near its minimum)
    assert _true_mse(values, ours) <= 1.05 * min(errors), (ours, best)


def test_registry() -> None:
    assert calibrator_names() == ["entropy", "entropy-nozero", "minmax", "mixed", "mse", "percentile"]
    hist = np.zeros(FINE_BINS, np.int64)
    accumulate(hist, np.linspace(-3, 3, 1001, dtype=np.float32), 3.0)
    options = CalibratorOptions(percentile=90.0)
    assert get_calibrator("minmax")(hist, 3.0, options) == 3.0
    assert get_calibrator("percentile")(hist, 3.0, options) == pytest.approx(2.7, abs=0.01)
    assert 0 < get_calibrator("entropy")(hist, 3.0, options) <= 3.0 * 2048.5 / 2048
    # mixed's histogram-only threshold is entropy-nozero's (finish refines it with the model)
    assert get_calibrator("mixed")(hist, 3.0, options) == get_calibrator("entropy-nozero")(hist, 3.0, options)
    with pytest.raises(CalibrationError, match="unknown calibrator 'kl'.*"):
        get_calibrator("kl")
    with pytest.raises(EdgeSdkInternalError):
        register_calibrator("entropy")(lambda h, a, o: 1.0)


@pytest.mark.slow
def test_cache_matches_independent_reference_on_real_activations(
    models_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """edgesdk's cache vs this file's loop on activations gathered separately with onnxruntime."""
    import onnx
    import onnxruntime as ort

    from edgeagent.vision.preprocess import preprocess_batch
    from edgesdk.quant.cache import read_thresholds
    from edgesdk.quant.calibrate import calibrate
    from edgesdk.recipe import load_recipe

    recipe = load_recipe("yolox-nano")
    result = calibrate(
        recipe, data_dir / "coco_val2017_first128", count=6, model_dir=models_dir, output=tmp_path
    )
    _, cached = read_thresholds(tmp_path / "calibration.cache")
    names = list(cached)[::9]  # ~40 tensors across the whole network
    model = onnx.ModelProto()
    model.CopyFrom(result.prepared.exported.model)
    for name in names:
        if name not in {o.name for o in model.graph.output} and name != "images":
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    params = recipe.resolved()["preprocess"]
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for path in result.prepared.selection.chosen:
        feed, _ = preprocess_batch([cv2_read(path)], recipe.input.hw, params)
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"images": feed})))
        outputs["images"] = feed
        for name in names:
            values[name].append(np.abs(outputs[name]).ravel())
    relative = []
    for name in names:
        every = np.concatenate(values[name])
        hist, _ = np.histogram(every, bins=2048, range=(0.0, float(every.max())))
        reference, _ = reference_entropy(hist, float(every.max()))
        relative.append(abs(cached[name] - reference) / reference)
    assert len(relative) >= 30
    print(
        f"median relative difference {np.median(relative):.4%}, max {max(relative):.4%} over {len(relative)}"
    )
    assert float(np.median(relative)) <= 0.02, sorted(relative)[-5:]


def cv2_read(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_entropy_nozero_ignores_the_relu_zero_spike() -> None:
    rng = np.random.default_rng(4)
    relu = np.concatenate([np.zeros(700_000), np.abs(rng.standard_normal(300_000))])
    fine, amax = _hist(relu, bins=FINE_BINS)
    options = CalibratorOptions(percentile=99.99)
    plain = get_calibrator("entropy")(fine, amax, options)
    nozero = get_calibrator("entropy-nozero")(fine, amax, options)
    assert plain <= amax * 256.5 / 2048  # the spike pins plain entropy to <= 2 bins per level
    assert nozero > 1.5 * plain
    only_zeros = np.zeros(FINE_BINS, np.int64)
    only_zeros[0] = 10
    assert get_calibrator("entropy-nozero")(only_zeros, 1.0, options) == 1.0
