"""Saturation thresholds from |x| histograms: entropy (TensorRT's), minmax, percentile, mse.

Besides the four the recipe schema names, ``entropy-nozero`` is entropy with the first bin
(the zero spike ReLU leaves) discarded, as NVIDIA describes TensorRT doing; ``mixed`` starts
from entropy-nozero and is refined per tensor with the model (:mod:`edgesdk.quant.mixed`).

Each calibrator maps one tensor's fine histogram of ``|x|`` over ``[0, amax]``
(:data:`~edgesdk.quant.histogram.FINE_BINS` bins, see :mod:`edgesdk.quant.histogram`) to a
symmetric threshold ``T``: int8 codes ``round(x / s)`` with ``s = T / 127``, values beyond
``±T`` saturate. Calibrators are registered by name (:func:`register_calibrator`).

**entropy** is TensorRT's ``EntropyCalibration2`` as Migacz (GTC 2017, "8-bit inference
with TensorRT") describes it, on the 2048-bin histogram ``h`` of ``|x|`` over ``[0, amax]``:

for each candidate ``i`` in 128 … 2048 (bins kept):

1. reference ``P = h[0:i]`` with the outliers ``sum(h[i:])`` added to ``P[i-1]``;
2. candidate ``Q``: merge ``h[0:i]`` (outliers *not* included) into 128 levels of
   ``i // 128`` bins each (the last level also takes the ``i % 128`` remaining bins), then
   expand every level back over its bins, spreading its count evenly over the bins where
   ``P`` is non-zero (bins where ``P`` is zero stay zero);
3. normalise both and take ``KL(P || Q) = sum P log(P / Q)`` over ``P > 0``; a bin with
   ``P > 0`` and ``Q = 0`` (possible only in the last level when it holds nothing but the
   folded outliers) makes the divergence infinite (no smoothing).

The threshold is ``(m + 0.5) * amax / 2048`` for the ``m`` of least divergence (ties within
1e-9 relative go to the smallest ``m``; flat tails of empty bins give exact ties). ``i = 2048``
is a candidate: a real TensorRT 8.5 cache stores saturated Sigmoid outputs (max 1.0) at
exactly ``2048.5 / 2048 / 127``. The remainder convention of step 2 is MXNet's and
onnxruntime's; Migacz's text leaves it open.

Known weakness (measured, see tests/benchmarks/bench_int8_map.py): after ReLU, bin 0 holds a
spike of zeros that every candidate with ``i >= 256`` spreads over two or more bins, so the
threshold sticks near ``amax / 8`` and ReLU networks lose much accuracy; ``entropy-nozero``
empties bin 0 first, which NVIDIA documents TensorRT doing (MLPerf Inference v0.5 notes).

Vectorised: with prefix sums of ``h``, of ``h log h`` and of ``h > 0``, the divergence of
every candidate is ``KL(i) = [A(i) - sum_j Pj(i) (log Sj(i) - log nj(i))] / N + log C(i) - log N``
where ``Sj`` is level ``j``'s count, ``nj`` its non-empty bins, ``Pj`` its reference mass,
``C(i) = sum(h[:i])``, ``N = sum(h)`` and ``A(i) = sum P log P``; all (1921, 128) level sums
are gathered from the prefix sums at once, with no loop over candidates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgesdk.errors import CalibrationError, EdgeSdkInternalError
from edgesdk.quant.histogram import HIST_BINS, coarse

__all__ = [
    "FIRST_CANDIDATE",
    "LEVELS",
    "CalibratorFn",
    "CalibratorOptions",
    "calibrator_names",
    "entropy_kl",
    "entropy_threshold",
    "get_calibrator",
    "kl_at",
    "mse_threshold",
    "percentile_threshold",
    "register_calibrator",
]

LEVELS = 128
"""Quantised levels of the candidate distribution (int8's positive half)."""

FIRST_CANDIDATE = 128
"""Fewest histogram bins a threshold candidate keeps."""

INT8_MAX = 127

TIE_RTOL = 1e-9
"""Divergences this close (relative) count as equal; the first (fewest bins) wins."""


@dataclass(frozen=True)
class CalibratorOptions:
    """Parameters some calibrators take (defaults live in the recipe: ``quantize``).

    Attributes:
        percentile: percentile of ``|x|`` for the ``percentile`` calibrator, in (50, 100].
    """

    percentile: float


CalibratorFn = Callable[[np.ndarray, float, CalibratorOptions], float]
"""``fn(fine_hist, amax, options) -> threshold``; ``amax > 0`` and the histogram is non-empty."""

_CALIBRATORS: dict[str, CalibratorFn] = {}


def register_calibrator(name: str) -> Callable[[CalibratorFn], CalibratorFn]:
    """Register a calibrator under ``name``; registering a name twice is a bug."""

    def wrap(fn: CalibratorFn) -> CalibratorFn:
        if name in _CALIBRATORS:
            raise EdgeSdkInternalError(f"calibrator {name!r} registered twice")
        _CALIBRATORS[name] = fn
        return fn

    return wrap


def calibrator_names() -> list[str]:
    """Registered calibrator names, sorted."""
    return sorted(_CALIBRATORS)


def get_calibrator(name: str) -> CalibratorFn:
    """The calibrator registered as ``name``.

    Raises:
        CalibrationError: unknown name (lists the known ones).
    """
    try:
        return _CALIBRATORS[name]
    except KeyError:
        raise CalibrationError(
            f"unknown calibrator {name!r}", hint=f"use one of: {', '.join(calibrator_names())}"
        ) from None


# --------------------------------------------------------------------------- entropy


def _xlogx(values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values, dtype=np.float64)
    positive = values > 0
    out[positive] = values[positive] * np.log(values[positive])
    return out


def _prefix(values: np.ndarray) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))


def _bounds(kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) bin indices, shape (len(kept), 128), of each level for each candidate."""
    merge = kept // LEVELS
    start = np.arange(LEVELS)[None, :] * merge[:, None]
    end = start + merge[:, None]
    end[:, -1] = kept  # the last level takes the remainder
    return start, end


@functools.lru_cache(maxsize=4)
def _all_bounds(bins: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = _bounds(np.arange(FIRST_CANDIDATE, bins + 1))
    start.flags.writeable = end.flags.writeable = False
    return start, end


def _divergence(h: np.ndarray, kept: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """KL(P || Q) for the candidates ``kept`` (bins kept), ``inf`` where undefined."""
    total = float(h.sum())
    if total <= 0:
        return np.full(kept.shape, np.inf)
    counts, hlogh, nonzero = _prefix(h), _prefix(_xlogx(h)), _prefix(h > 0)
    kept_mass = counts[kept]  # C(i): mass of h[0:i]
    last = h[kept - 1] + (total - kept_mass)  # P[i-1] with the outliers folded in
    ref_entropy = hlogh[kept - 1] + _xlogx(last)  # sum P log P
    start, end = bounds
    level_mass = counts[end] - counts[start]  # S_j (outliers excluded)
    level_nonzero = nonzero[end] - nonzero[start]  # bins with P > 0 (h > 0) ...
    level_nonzero[:, -1] += (last > 0) & (h[kept - 1] == 0)  # ... and P[i-1] > 0 from outliers
    ref_mass = level_mass.copy()
    ref_mass[:, -1] += total - kept_mass  # P_j: reference mass per level
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = ref_mass * (np.log(level_mass) - np.log(level_nonzero))
        cross = np.where(ref_mass > 0, terms, 0.0).sum(axis=1)
        kl = (ref_entropy - cross) / total + np.log(kept_mass) - np.log(total)
    kl[(kept_mass <= 0) | np.isnan(kl)] = np.inf
    return np.maximum(kl, 0.0)  # rounding can give -1e-16 for a perfect match


def entropy_kl(hist: np.ndarray) -> np.ndarray:
    """KL divergence of every entropy candidate (see the module docstring).

    Args:
        hist: (2048,) counts of ``|x|`` over ``[0, amax]`` (any bin count >= 128 works).

    Returns:
        (bins - 127,) float64: ``kl[k]`` is the divergence when keeping ``128 + k`` bins;
        ``inf`` where undefined (an empty histogram gives all ``inf``).
    """
    h = np.asarray(hist, dtype=np.float64)
    bins = h.shape[0]
    return _divergence(h, np.arange(FIRST_CANDIDATE, bins + 1), _all_bounds(bins))


def entropy_threshold(hist: np.ndarray, amax: float) -> tuple[float, float]:
    """TensorRT's entropy threshold for a 2048-bin ``|x|`` histogram over ``[0, amax]``.

    Returns:
        (threshold, kl): ``(m + 0.5) * amax / bins`` for the candidate ``m`` of least KL
        divergence, and that divergence.
    """
    kl = entropy_kl(hist)
    lowest = float(kl.min())
    # ties (within rounding: equal distributions give KLs equal to ~1e-15) go to the fewest bins
    best = (
        int(np.flatnonzero(kl <= lowest * (1 + TIE_RTOL) + 1e-15)[0]) if np.isfinite(lowest) else len(kl) - 1
    )
    bins = int(np.asarray(hist).shape[0])
    return (FIRST_CANDIDATE + best + 0.5) * amax / bins, float(kl[best])


def kl_at(hist: np.ndarray, amax: float, threshold: float) -> float:
    """The entropy divergence of the candidate nearest to ``threshold`` (for summaries).

    Args:
        hist: (2048,) counts over ``[0, amax]``.
        amax: the histogram's upper end.
        threshold: any threshold; candidates outside 128 … 2048 bins are clamped.
    """
    h = np.asarray(hist, dtype=np.float64)
    bins = h.shape[0]
    kept = np.array([np.clip(np.floor(threshold / amax * bins if amax > 0 else bins), FIRST_CANDIDATE, bins)])
    kept = kept.astype(np.intp)
    return float(_divergence(h, kept, _bounds(kept))[0])


# --------------------------------------------------------------------------- percentile, mse


def percentile_threshold(hist: np.ndarray, amax: float, percentile: float) -> float:
    """The ``percentile``-th percentile of ``|x|``, interpolated inside its bin.

    Args:
        hist: (n,) counts over ``[0, amax]``.
        amax: the histogram's upper end.
        percentile: in (0, 100]; 100 gives ``amax``.
    """
    cumulative = np.cumsum(hist, dtype=np.float64)
    total = cumulative[-1]
    if total <= 0 or percentile >= 100.0:
        return float(amax)
    target = total * percentile / 100.0
    b = int(np.searchsorted(cumulative, target, side="left"))
    before = cumulative[b - 1] if b > 0 else 0.0
    inside = (target - before) / max(float(hist[b]), 1.0)
    return float(min((b + inside) * amax / hist.shape[0], amax))


def mse_threshold(hist: np.ndarray, amax: float) -> float:
    """The threshold (a bin edge) minimising the expected squared int8 error of ``|x|``.

    Error model per candidate ``T`` (step ``d = T / 127``), values at bin centres ``c``:
    ``c > T`` saturates (error ``(c - T)^2``); ``c < d / 2`` rounds to 0 (error ``c^2``);
    the rest carry uniform rounding noise ``d^2 / 12``. All candidates at once from prefix
    sums of ``h``, ``h c`` and ``h c^2``.

    Args:
        hist: (n,) counts over ``[0, amax]``.
        amax: the histogram's upper end.
    """
    h = np.asarray(hist, dtype=np.float64)
    bins = h.shape[0]
    width = amax / bins
    centre = (np.arange(bins) + 0.5) * width
    s0, s1, s2 = _prefix(h), _prefix(h * centre), _prefix(h * centre * centre)
    edge = np.arange(1, bins + 1)
    threshold = edge * width
    step = threshold / INT8_MAX
    # bins whose centre is below step / 2 round to zero: b + 0.5 < edge / 254
    zero = np.clip(np.ceil(edge / (2 * INT8_MAX) - 0.5), 0, edge).astype(np.intp)
    inside = s2[zero] + step * step / 12.0 * (s0[edge] - s0[zero])
    outside = (s2[-1] - s2[edge]) - 2 * threshold * (s1[-1] - s1[edge]) + threshold**2 * (s0[-1] - s0[edge])
    return float(threshold[int(np.argmin(inside + outside))])


# --------------------------------------------------------------------------- the registry


@register_calibrator("entropy")
def _entropy(hist: np.ndarray, amax: float, options: CalibratorOptions) -> float:
    """TensorRT EntropyCalibration2: least KL divergence on the 2048-bin histogram."""
    return entropy_threshold(coarse(hist, HIST_BINS), amax)[0]


@register_calibrator("entropy-nozero")
def _entropy_nozero(hist: np.ndarray, amax: float, options: CalibratorOptions) -> float:
    """entropy with the first of the 2048 bins emptied before the search.

    After ReLU-like activations bin 0 holds a spike of zeros; any candidate that merges it
    with its neighbours (i >= 256) spreads that spike and looks bad, so plain entropy keeps
    too few bins (threshold ~amax / 8) on those tensors. NVIDIA's description of TensorRT's
    calibration (MLPerf Inference v0.5 notes) discards this bin. Not part of Migacz's text.
    """
    h = coarse(hist, HIST_BINS)
    h[0] = 0
    return entropy_threshold(h, amax)[0] if h.any() else float(amax)


@register_calibrator("mixed")
def _mixed(hist: np.ndarray, amax: float, options: CalibratorOptions) -> float:
    """entropy-nozero per histogram; :func:`~edgesdk.quant.calibrate.finish` then replaces the
    thresholds of the quantised activations by :mod:`edgesdk.quant.mixed`'s per-tensor choice
    (which needs the model and images, not just a histogram)."""
    return _entropy_nozero(hist, amax, options)


@register_calibrator("minmax")
def _minmax(hist: np.ndarray, amax: float, options: CalibratorOptions) -> float:
    """max |x|: nothing saturates."""
    return float(amax)


@register_calibrator("percentile")
def _percentile(hist: np.ndarray, amax: float, options: CalibratorOptions) -> float:
    """The recipe's percentile (quantize.percentile, e.g. 99.99) of |x|."""
    return percentile_threshold(hist, amax, options.percentile)


@register_calibrator("mse")
def _mse(hist: np.ndarray, amax: float, options: CalibratorOptions) -> float:
    """Least expected squared quantisation error."""
    return mse_threshold(hist, amax)
