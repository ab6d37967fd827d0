"""Per-tensor summaries: thresholds, saturation, KL, and the broken-range flags."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.quant.calibrators import CalibratorOptions
from edgesdk.quant.stats import ActivationStats, TensorStats
from edgesdk.quant.summary import compute_thresholds, flagged, summarize, summarize_tensor

OPTIONS = CalibratorOptions(percentile=99.99)


def _stats(name: str, *batches: np.ndarray) -> TensorStats:
    stats = TensorStats(name)
    for batch in batches:
        stats.observe_range(batch)
    for batch in batches:
        stats.observe_histogram(batch.astype(np.float32).copy())
    return stats


def test_healthy_tensor() -> None:
    values = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    summary = summarize_tensor(_stats("t", values), "entropy", OPTIONS)
    assert summary.flags == () and not summary.broken
    assert summary.threshold is not None and 0 < summary.threshold < summary.amax
    assert summary.scale == pytest.approx(summary.threshold / 127)
    assert summary.kl is not None and summary.kl >= 0
    assert 0 < summary.saturation < 0.01
    minmax = summarize_tensor(_stats("t", values), "minmax", OPTIONS)
    assert minmax.threshold == minmax.amax and minmax.saturation == 0.0 and minmax.kl >= summary.kl  # type: ignore[operator]
    data = summary.to_json()
    assert data["name"] == "t" and data["saturation_pct"] == pytest.approx(100 * summary.saturation, abs=1e-6)


def test_broken_ranges_get_no_threshold() -> None:
    zeros = summarize_tensor(_stats("zeros", np.zeros(100, np.float32)), "entropy", OPTIONS)
    assert zeros.flags == ("all-zero",) and zeros.threshold is None and zeros.broken
    nan = np.array([1.0, np.nan, -2.0, np.inf], np.float32)
    bad = summarize_tensor(_stats("nan", nan), "entropy", OPTIONS)
    assert bad.flags == ("nonfinite",) and bad.nonfinite == 2 and bad.threshold is None
    only_nan = summarize_tensor(_stats("only", np.full(4, np.nan, np.float32)), "entropy", OPTIONS)
    assert set(only_nan.flags) == {"nonfinite", "no-data"}
    assert only_nan.to_json()["min"] is None


def test_warning_flags_keep_the_threshold() -> None:
    rng = np.random.default_rng(1)
    huge = np.concatenate([rng.standard_normal(10_000), [1e5]]).astype(np.float32)
    summary = summarize_tensor(_stats("huge", huge), "entropy", OPTIONS)
    assert "huge-max" in summary.flags and "outliers" in summary.flags and summary.threshold is not None
    half_saturated = np.concatenate([rng.uniform(0, 1, 50_000), rng.uniform(9, 10, 2_000)]).astype(np.float32)
    tight = summarize_tensor(_stats("sat", half_saturated), "percentile", CalibratorOptions(percentile=90.0))
    assert "saturates" in tight.flags and tight.saturation == pytest.approx(0.1, abs=0.01)


def test_summarize_all_in_graph_order() -> None:
    stats = ActivationStats(
        tensors={
            "b": _stats("b", np.linspace(-1, 1, 1000, dtype=np.float32)),
            "a": _stats("a", np.zeros(10, np.float32)),
        }
    )
    summaries = summarize(stats, "mse", OPTIONS)
    assert [s.name for s in summaries] == ["b", "a"]
    assert list(compute_thresholds(summaries)) == ["b"]
    assert flagged(summaries) == {"a": ("all-zero",)}


def test_zero_spike_flag_for_entropy_only() -> None:
    rng = np.random.default_rng(2)
    relu = np.concatenate([np.zeros(60_000), np.abs(rng.standard_normal(40_000))]).astype(np.float32)
    assert "zero-spike" in summarize_tensor(_stats("relu", relu), "entropy", OPTIONS).flags
    assert "zero-spike" not in summarize_tensor(_stats("relu", relu), "entropy-nozero", OPTIONS).flags
    dense = rng.standard_normal(100_000).astype(np.float32)
    assert "zero-spike" not in summarize_tensor(_stats("dense", dense), "entropy", OPTIONS).flags
