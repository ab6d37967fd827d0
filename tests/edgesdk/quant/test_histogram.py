"""|x| histograms over a fixed range: agreement with numpy, exact coarsening, saturation."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.quant.histogram import FINE_BINS, HIST_BINS, accumulate, coarse, fraction_above


def test_accumulate_matches_numpy_histogram_of_abs() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((2, 3, 17, 19)).astype(np.float32) * s for s in (0.5, 2.0, 1.0)]
    amax = max(float(np.abs(b).max()) for b in batches)
    hist = np.zeros(FINE_BINS, np.int64)
    for batch in batches:
        accumulate(hist, batch.copy(), amax, clip=False)
    every = np.abs(np.concatenate([b.ravel() for b in batches]))
    expected, _ = np.histogram(every, bins=FINE_BINS, range=(0.0, amax))
    assert hist.sum() == every.size
    # float32 scaling may move a value sitting on a bin edge to the neighbour bin
    assert np.abs(hist - expected).sum() <= 4
    assert hist[-1] >= 1  # the maximum itself lands in the last bin


def test_accumulate_clips_values_above_the_range_into_the_last_bin() -> None:
    hist = np.zeros(16, np.int64)
    accumulate(hist, np.array([0.0, 0.5, -1.0, 3.0, -100.0], np.float32), 1.0)
    assert hist.sum() == 5 and hist[0] == 1 and hist[8] == 1 and hist[-1] == 3


def test_accumulate_leaves_read_only_input_untouched() -> None:
    values = np.array([-1.0, 2.0], np.float32)
    values.flags.writeable = False
    hist = np.zeros(4, np.int64)
    accumulate(hist, values, 2.0)
    assert values.tolist() == [-1.0, 2.0] and hist.tolist() == [0, 0, 1, 1]


def test_coarse_sums_groups_exactly() -> None:
    fine = np.arange(FINE_BINS, dtype=np.int64)
    out = coarse(fine)
    assert out.shape == (HIST_BINS,) and out.sum() == fine.sum()
    assert out[1] == sum(range(8, 16))
    with pytest.raises(ValueError):
        coarse(np.zeros(100, np.int64))


def test_fraction_above() -> None:
    hist = np.array([10, 0, 0, 10], np.int64)  # over [0, 4]
    assert fraction_above(hist, 4.0, 4.0) == 0.0
    assert fraction_above(hist, 4.0, 3.0) == pytest.approx(0.5)
    assert fraction_above(hist, 4.0, 3.5) == pytest.approx(0.25)  # half of the last bin
    assert fraction_above(hist, 4.0, 0.0) == pytest.approx(1.0)
    assert fraction_above(np.zeros(4, np.int64), 4.0, 1.0) == 0.0


def test_growing_histogram_matches_the_fixed_range_one() -> None:
    from edgesdk.quant.calibrators import entropy_threshold
    from edgesdk.quant.histogram import GrowingHistogram

    rng = np.random.default_rng(3)
    batches = [rng.laplace(size=50_000).astype(np.float32) * s for s in (0.2, 1.0, 0.5, 7.0, 3.0)]
    batches.append(np.zeros(1000, np.float32))  # an all-zero batch
    growing = GrowingHistogram()
    for batch in batches:
        growing.add(batch.copy(), float(np.abs(batch).max()))
    every = np.concatenate(batches)
    amax = float(np.abs(every).max())
    exact = np.zeros(FINE_BINS, np.int64)
    accumulate(exact, every.copy(), amax)
    approx = growing.to_fixed(amax)
    assert growing.range > amax >= growing.range / 2  # a power of two just above the max
    assert approx.sum() == exact.sum() == every.size
    # every value moves at most one fine bin
    assert np.abs(np.cumsum(approx) - np.cumsum(exact)).max() <= np.max(exact)
    ours, _ = entropy_threshold(coarse(approx), amax)
    reference, _ = entropy_threshold(coarse(exact), amax)
    assert ours == pytest.approx(reference, rel=0.01)


def test_growing_histogram_of_zeros_only() -> None:
    from edgesdk.quant.histogram import GrowingHistogram

    growing = GrowingHistogram()
    growing.add(np.zeros(10, np.float32), 0.0)
    assert growing.to_fixed(1.0)[0] == 10 and growing.to_fixed(1.0).sum() == 10


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_index_counter_equals_bincount_small_and_large(dtype: type) -> None:
    from edgesdk.quant.histogram import IndexCounter

    rng = np.random.default_rng(4)
    small: np.ndarray = rng.integers(0, FINE_BINS + 1, 1000).astype(dtype)  # np.bincount path
    large: np.ndarray = rng.integers(0, FINE_BINS + 1, 300_000).astype(dtype)  # cv2.calcHist path
    counter = IndexCounter(FINE_BINS)
    for part in (small, large.reshape(3, 100, 1000), large):
        counter.add(part)
    every = np.concatenate([small, large, large]).astype(np.int64)
    expected = np.bincount(every, minlength=FINE_BINS + 1)
    expected[FINE_BINS - 1] += expected[FINE_BINS]  # index == bins (|x| == amax): last bin
    assert np.array_equal(counter.histogram(), expected[:FINE_BINS])


def test_index_counter_stays_exact_past_float32_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesdk.quant import histogram
    from edgesdk.quant.histogram import IndexCounter

    monkeypatch.setattr(histogram, "_EXACT_FLOAT32", 50_000)  # flush often (real limit: 2**24)
    monkeypatch.setattr(histogram, "_SMALL", 10)
    counter = IndexCounter(16)
    values = np.full(40_000, 3, np.uint16)
    for _ in range(5):
        counter.add(values)
    counter.add(np.array([40_000, 16, 15] * 10, np.uint16))  # above the range: last bin
    hist = counter.histogram()
    assert hist[3] == 200_000 and hist[15] == 30 and hist.sum() == 200_030
    with pytest.raises(TypeError, match="uint16 or int16"):
        counter.add(np.zeros(3, np.int32))
