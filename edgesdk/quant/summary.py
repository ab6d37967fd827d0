"""Per-tensor calibration summary: threshold, saturation, KL divergence, and range flags.

Flags (:data:`FLAGS`). *Broken* ranges get no threshold: they are left out of the calibration
cache and the Q/DQ model (TensorRT then keeps those layers in fp16/fp32):

- ``no-data``: the tensor produced no finite value (empty, or only NaN/inf).
- ``all-zero``: every value is 0 (a dead branch; the range is unknown).
- ``nonfinite``: NaN or ±inf appeared in the activations (a numerical bug upstream).

Warnings keep their threshold:

- ``huge-max``: ``max |x| > 65504``: the tensor overflows fp16, which TensorRT falls back to
  for layers it does not run in int8.
- ``outliers``: ``max |x|`` is over 100x the 99.99th percentile of ``|x|``: a handful of
  values stretch the range (minmax would waste most of the 256 codes on them).
- ``saturates``: more than 1 % of the values lie beyond the threshold.
- ``zero-spike`` (entropy only): over 25 % of the values sit in the first of the 2048 bins
  (the zeros ReLU leaves). Plain entropy then keeps at most ~256 bins (threshold near
  ``amax / 8``), which can ruin accuracy; compare ``entropy-nozero``, ``percentile``, ``mse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesdk.quant.calibrators import CalibratorOptions, get_calibrator, kl_at, percentile_threshold
from edgesdk.quant.histogram import coarse, fraction_above
from edgesdk.quant.stats import ActivationStats, TensorStats

__all__ = [
    "BROKEN",
    "FLAGS",
    "TensorSummary",
    "compute_thresholds",
    "flagged",
    "summarize",
    "summarize_tensor",
]

FP16_MAX = 65504.0
OUTLIER_RATIO = 100.0
SATURATION_WARN = 0.01
ZERO_SPIKE = 0.25

BROKEN = ("no-data", "all-zero", "nonfinite")
"""Flags that leave a tensor without a threshold."""

FLAGS = (*BROKEN, "huge-max", "outliers", "saturates", "zero-spike")


@dataclass(frozen=True)
class TensorSummary:
    """One calibrated tensor.

    Attributes:
        name: the ONNX tensor name.
        threshold: saturation threshold ``T`` (None when the range is broken).
        amax: max |x| over the calibration images (finite values).
        lo: smallest value; ``hi``: largest value.
        saturation: fraction of values with ``|x| > T`` (0..1).
        kl: entropy KL divergence at ``T`` (the minimum for the entropy calibrator).
        nonfinite: NaN/inf values seen.
        flags: see the module docstring.
    """

    name: str
    threshold: float | None
    amax: float
    lo: float
    hi: float
    saturation: float
    kl: float | None
    nonfinite: int = 0
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def scale(self) -> float | None:
        """``threshold / 127`` (the int8 step; what the calibration cache stores)."""
        return None if self.threshold is None else self.threshold / 127.0

    @property
    def broken(self) -> bool:
        """Whether the range is unusable (no threshold)."""
        return any(flag in BROKEN for flag in self.flags)

    def to_json(self) -> dict[str, Any]:
        """Plain data for summary.json (saturation in percent)."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "scale": self.scale,
            "amax": self.amax,
            "min": self.lo if np.isfinite(self.lo) else None,
            "max": self.hi if np.isfinite(self.hi) else None,
            "saturation_pct": round(100.0 * self.saturation, 6),
            "kl": self.kl,
            "nonfinite": self.nonfinite,
            "flags": list(self.flags),
        }


def _broken_flags(stats: TensorStats) -> list[str]:
    flags = []
    if stats.nonfinite:
        flags.append("nonfinite")
    if stats.count == 0:
        flags.append("no-data")
    elif stats.amax == 0:
        flags.append("all-zero")
    return flags


def summarize_tensor(stats: TensorStats, calibrator: str, options: CalibratorOptions) -> TensorSummary:
    """Threshold, saturation, KL and flags of one tensor (needs pass 2's histogram).

    Raises:
        CalibrationError: unknown calibrator name.
    """
    fn = get_calibrator(calibrator)
    flags = _broken_flags(stats)
    if flags or stats.hist is None:
        return TensorSummary(
            stats.name, None, stats.amax, stats.lo, stats.hi, 0.0, None, stats.nonfinite, tuple(flags)
        )
    amax = stats.amax
    threshold = float(fn(stats.hist, amax, options))
    saturation = fraction_above(stats.hist, amax, threshold)
    kl = kl_at(coarse(stats.hist), amax, threshold)
    if amax > FP16_MAX:
        flags.append("huge-max")
    if amax > OUTLIER_RATIO * percentile_threshold(stats.hist, amax, 99.99):
        flags.append("outliers")
    if saturation > SATURATION_WARN:
        flags.append("saturates")
    if calibrator == "entropy" and coarse(stats.hist)[0] > ZERO_SPIKE * stats.hist.sum():
        flags.append("zero-spike")
    return TensorSummary(
        stats.name, threshold, amax, stats.lo, stats.hi, saturation, kl, stats.nonfinite, tuple(flags)
    )


def summarize(stats: ActivationStats, calibrator: str, options: CalibratorOptions) -> list[TensorSummary]:
    """:func:`summarize_tensor` for every tensor, in graph order."""
    return [summarize_tensor(s, calibrator, options) for s in stats.tensors.values()]


def compute_thresholds(summaries: list[TensorSummary]) -> dict[str, float]:
    """tensor name -> threshold for the tensors with a usable range, in graph order."""
    return {s.name: s.threshold for s in summaries if s.threshold is not None}


def flagged(summaries: list[TensorSummary]) -> Mapping[str, tuple[str, ...]]:
    """tensor name -> flags, for the tensors with any flag."""
    return {s.name: s.flags for s in summaries if s.flags}
