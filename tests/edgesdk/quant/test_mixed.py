"""The mixed calibrator: per tensor, the threshold its consumers see least error through."""

from __future__ import annotations

from collections.abc import Callable

from edgesdk.quant.calibrate import Prepared
from edgesdk.quant.calibrators import CalibratorOptions
from edgesdk.quant.mixed import BASE_CALIBRATORS, mixed_thresholds
from edgesdk.quant.summary import compute_thresholds, summarize

Tiny = Callable[..., Prepared]


def _base(prepared: Prepared) -> dict[str, dict[str, float]]:
    options = CalibratorOptions(percentile=99.99)
    return {c: compute_thresholds(summarize(prepared.stats, c, options)) for c in BASE_CALIBRATORS}


def test_consumer_weighted_choice(tiny_prepared: Tiny) -> None:
    prepared = tiny_prepared()
    base = _base(prepared)
    amax = prepared.stats.tensors["c1"].amax  # ~100, from channel 0 that conv2 ignores
    small = 0.5 * prepared.stats.tensors["x"].amax  # channel 1's range, what conv2 reads
    assert amax > 150 * small
    choice = mixed_thresholds(prepared, base, images=4)
    assert choice.images == 4 and set(choice.source) == {"x", "c1"}
    # every histogram calibrator keeps most of channel 0; conv2 only sees channel 1's rounding
    assert min(base[c]["c1"] for c in BASE_CALIBRATORS) > 5 * choice.thresholds["c1"]
    assert choice.source["c1"].startswith("amax/2^") and choice.thresholds["c1"] < amax / 10
    assert choice.error["c1"] < 1e-3
    assert choice.thresholds["x"] > 0 and choice.to_json()["tensors"]["c1"]["from"] == choice.source["c1"]


def test_keep_fp_is_not_searched(tiny_prepared: Tiny) -> None:
    prepared = tiny_prepared()
    base = _base(prepared)
    choice = mixed_thresholds(prepared, base, images=1, keep_fp=["conv2"])
    assert set(choice.source) == {"x"}
    assert choice.thresholds["c1"] == base["entropy-nozero"]["c1"]  # the default's, untouched
