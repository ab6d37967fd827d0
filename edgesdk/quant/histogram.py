"""Histograms of |x| with a fixed range, and the statistics derived from them.

Every activation histogram in edgesdk is a histogram of ``|x|`` over ``[0, amax]`` where
``amax`` is the tensor's maximum ``|x|`` over *all* calibration images (a first pass finds it,
see :mod:`edgesdk.quant.stats`). It is kept at :data:`FINE_BINS` = 2048 x 8 bins so that

- the entropy calibrator sums groups of 8 into *exactly* TensorRT's 2048-bin histogram over
  ``[0, amax]`` (the edges coincide), and
- percentile and MSE thresholds get 8x finer resolution.

Bin ``b`` of an ``n``-bin histogram holds ``b * amax / n <= |x| < (b + 1) * amax / n``; the
last bin also holds ``|x| == amax``. Pure numpy, except OpenCV's ``calcHist`` for counting
bin indices (:class:`IndexCounter`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "FINE_BINS",
    "FINE_PER_BIN",
    "HIST_BINS",
    "STREAM_BINS",
    "GrowingHistogram",
    "IndexCounter",
    "accumulate",
    "coarse",
    "fraction_above",
]

HIST_BINS = 2048
"""Bins of TensorRT's entropy-calibration histogram (Migacz, GTC 2017)."""

FINE_PER_BIN = 8
"""Fine bins per entropy bin."""

FINE_BINS = HIST_BINS * FINE_PER_BIN
"""Bins of the histogram edgesdk accumulates (16384)."""


def accumulate(hist: np.ndarray, values: np.ndarray, amax: float, *, clip: bool = True) -> None:
    """Add ``|values|`` to ``hist`` (a histogram over ``[0, amax]``), in place.

    Values at or above ``amax`` land in the last bin. Non-finite values must be removed by
    the caller.

    Args:
        hist: (n,) int64 counts, updated in place.
        values: float32 array of any shape. **Overwritten** (used as scratch space) when it is
            a writable float32 array; pass a copy to keep it.
        amax: the histogram's upper end, > 0.
        clip: clamp first. ``False`` saves a pass over the data when no value exceeds
            ``amax`` by more than rounding (``amax`` came from a first pass over the same
            data); a larger value then costs memory proportional to ``|x| / amax``.
    """
    bins = hist.shape[0]
    flat = values.reshape(-1)
    if flat.dtype != np.float32 or not flat.flags.writeable or not flat.flags.c_contiguous:
        flat = flat.astype(np.float32)
    np.abs(flat, out=flat)
    flat *= np.float32(bins / amax)
    if clip:
        np.minimum(flat, np.float32(bins), out=flat)
    counts = np.bincount(flat.astype(np.intp), minlength=bins)
    hist += counts[:bins]
    hist[-1] += counts[bins:].sum()  # |x| == amax (and anything above it)


_EXACT_FLOAT32 = 2**24
"""Counts ``cv2.calcHist`` may accumulate in its float32 histogram and stay exact."""

_SMALL = 32768
"""Index arrays below this size are counted with ``np.bincount`` (``calcHist`` has a per-call cost)."""


class IndexCounter:
    """Counts bin indices ``floor(|x| * bins / amax)`` (uint16 or non-negative int16) into ``bins`` bins.

    Large index arrays go to OpenCV's ``calcHist`` (one bin per integer, so exact; ~0.4 ns
    per value, about 3x faster than ``np.bincount``, which first widens every index to
    int64), accumulated in a float32 buffer that is moved to int64 before it could hold
    2**24 in a bin. Small arrays go to ``np.bincount``. Index ``bins`` (``|x| == amax``)
    and anything above it land in the last bin.

    Args:
        bins: histogram bins (<= 65535).
    """

    def __init__(self, bins: int = FINE_BINS) -> None:
        self.bins = bins
        self.counts = np.zeros(bins + 1, np.int64)
        self.added = 0
        self._buffer: np.ndarray | None = None
        self._pending = 0

    def add(self, indices: np.ndarray) -> None:
        """Count ``indices`` (uint16, or int16 known to be >= 0; any shape; not modified)."""
        flat = np.ascontiguousarray(indices).reshape(-1)
        if flat.dtype == np.int16:
            flat = flat.view(np.uint16)
        elif flat.dtype != np.uint16:
            raise TypeError(f"bin indices must be uint16 or int16, not {indices.dtype}")
        self.added += flat.size
        if flat.size < _SMALL:
            counts = np.bincount(flat, minlength=self.bins + 1)
            self.counts += counts[: self.bins + 1]
            self.counts[-1] += counts[self.bins + 1 :].sum()
            return
        from edgesdk._lazy import require

        cv2 = require("cv2", feature="counting histogram bins", hint="pip install opencv-python-headless")
        for start in range(0, flat.size, _EXACT_FLOAT32):
            chunk = flat[start : start + _EXACT_FLOAT32]
            if self._buffer is None:
                self._buffer = np.zeros((self.bins + 1, 1), np.float32)
            elif self._pending + chunk.size > _EXACT_FLOAT32:
                self._flush()
            edges = [0, self.bins + 1]
            cv2.calcHist(
                [chunk.reshape(1, -1)], [0], None, [self.bins + 1], edges, hist=self._buffer, accumulate=True
            )
            self._pending += chunk.size

    def _flush(self) -> None:
        if self._buffer is not None:
            self.counts += self._buffer.reshape(-1).astype(np.int64)
            self._buffer[:] = 0
        self._pending = 0

    def histogram(self) -> np.ndarray:
        """The (bins,) int64 histogram of everything added so far."""
        self._flush()
        hist = self.counts[: self.bins].copy()
        hist[-1] += self.added - int(self.counts[: self.bins].sum())  # index bins, and above
        return hist


def coarse(hist: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """Sum a fine histogram into ``bins`` bins over the same range (edges coincide exactly).

    Args:
        hist: (k * bins,) counts.
        bins: target bin count (default 2048).

    Returns:
        (bins,) counts, same dtype.
    """
    if hist.shape[0] % bins:
        raise ValueError(f"a {hist.shape[0]}-bin histogram cannot be summed into {bins} bins")
    return hist.reshape(bins, -1).sum(axis=1)


def fraction_above(hist: np.ndarray, amax: float, threshold: float) -> float:
    """Fraction of the histogram's values with ``|x| > threshold`` (they saturate).

    The bin holding ``threshold`` contributes the part of it above the threshold, assuming
    values spread evenly inside a bin.

    Args:
        hist: (n,) counts over ``[0, amax]``.
        amax: the histogram's upper end.
        threshold: saturation threshold (same unit as the values).

    Returns:
        A fraction in [0, 1] (0 for an empty histogram).
    """
    total = float(hist.sum())
    if total == 0 or amax <= 0 or threshold >= amax:
        return 0.0
    position = max(threshold, 0.0) / amax * hist.shape[0]
    whole = int(position)
    above = float(hist[whole + 1 :].sum()) + float(hist[whole]) * (1.0 - (position - whole))
    return min(max(above / total, 0.0), 1.0)


STREAM_BINS = 2 * FINE_BINS
"""Bins of a :class:`GrowingHistogram` (at least one per half fine bin after re-binning)."""


class GrowingHistogram:
    """A ``|x|`` histogram for one streaming pass: its range grows, then it is re-binned once.

    The range is ``[0, R)`` with ``R`` the smallest power of two above every value seen. When
    a batch exceeds it, ``R`` doubles ``k`` times and each run of ``2**k`` bins merges into one:
    exact, no value changes bin relative to the others. :meth:`to_fixed` then moves every bin
    to the fixed-range bin holding its centre. As ``R < 2 * amax`` a bin is at most one target
    bin wide, so a value lands at most half a fine bin (1/16 of an entropy bin) from where a
    histogram over ``[0, amax]`` would put it. Exact zeros are counted apart (any range holds them).
    """

    def __init__(self, bins: int = STREAM_BINS) -> None:
        self.bins = bins
        self.range = 0.0
        self.counts = np.zeros(bins, np.int64)
        self.zeros = 0

    def _grow(self, amax: float) -> None:
        new_range = 2.0 ** (math.floor(math.log2(amax)) + 1)
        if self.range > 0:
            factor = int(round(new_range / self.range))
            total = self.counts.sum()
            merged = self.counts.reshape(-1, factor).sum(axis=1) if factor < self.bins else np.array([total])
            self.counts = np.zeros(self.bins, np.int64)
            self.counts[: merged.shape[0]] = merged
        self.range = new_range

    def add(self, values: np.ndarray, batch_amax: float) -> None:
        """Add finite ``values`` whose largest ``|x|`` is ``batch_amax`` (``values`` is overwritten)."""
        if batch_amax <= 0:
            self.zeros += int(values.size)
            return
        if batch_amax >= self.range:
            self._grow(batch_amax)
        accumulate(self.counts, values, self.range, clip=False)  # every |x| < range

    def to_fixed(self, amax: float, bins: int = FINE_BINS) -> np.ndarray:
        """The ``bins``-bin histogram over ``[0, amax]`` (``amax`` = the largest |x| seen)."""
        out = np.zeros(bins, np.int64)
        out[0] = self.zeros
        if self.range <= 0 or amax <= 0:
            return out
        centres = (np.arange(self.bins) + 0.5) * (self.range / self.bins)
        target = np.minimum((centres * (bins / amax)).astype(np.intp), bins - 1)
        out += np.rint(np.bincount(target, weights=self.counts, minlength=bins)).astype(np.int64)
        return out
