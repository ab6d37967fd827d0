"""Schedules and allocation: ratios, rounding, minimum channels, global vs uniform."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.errors import PruneError
from edgesdk.slim.schedule import allocate, round_kept, step_ratios, top_k


def test_step_ratios_are_geometric() -> None:
    steps = step_ratios(0.5, 2)
    assert steps[-1] == pytest.approx(0.5) and steps[0] == pytest.approx(1 - 0.5**0.5)
    assert step_ratios(0.3) == [pytest.approx(0.3)]
    with pytest.raises(PruneError):
        step_ratios(1.0)


@pytest.mark.parametrize(
    ("count", "size", "round_to", "want"),
    [(0, 32, 8, 8), (9, 32, 8, 16), (16, 32, 8, 16), (30, 36, 8, 32), (33, 36, 8, 36), (3, 6, 8, 3), (0, 6, 8, 1),
     (5, 32, 1, 5)],
)  # fmt: skip
def test_round_kept(count: int, size: int, round_to: int, want: int) -> None:
    assert round_kept(count, size, round_to) == want


def test_top_k_keeps_best_and_one_per_segment() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.05, 0.3])
    assert top_k(scores, 2).tolist() == [0, 2]
    assert top_k(scores, 2, [np.array([3, 4, 5])]).tolist() == [0, 2, 5]


def _linear_flops(sizes: dict[int, int], weight: dict[int, int]):
    """FLOPs = sum over groups of weight * kept channels (a stand-in cost model)."""

    def flops(kept):
        return sum(weight[g] * len(kept.get(g, range(sizes[g]))) for g in sizes)

    return flops


def test_global_threshold_cuts_low_scores_first() -> None:
    scores = {0: np.linspace(0.1, 1.0, 16), 1: np.linspace(1.1, 2.0, 16)}
    alloc = allocate(scores, _linear_flops({0: 16, 1: 16}, {0: 1, 1: 1}), 0.25, scope="global", round_to=1)
    assert len(alloc.kept[0]) == 8 and len(alloc.kept[1]) == 16  # all cuts from the weak group
    assert alloc.removed >= 0.25
    assert alloc.kept[0].tolist() == list(range(8, 16))


def test_uniform_cuts_every_group_alike() -> None:
    scores = {0: np.linspace(0.1, 1.0, 16), 1: np.linspace(1.1, 2.0, 32)}
    alloc = allocate(scores, _linear_flops({0: 16, 1: 32}, {0: 1, 1: 1}), 0.5, scope="uniform", round_to=8)
    assert len(alloc.kept[0]) == 8 and len(alloc.kept[1]) == 16


def test_rounding_to_multiples_and_minimum_one() -> None:
    scores = {0: np.arange(24, dtype=float), 1: np.arange(4, dtype=float)}
    alloc = allocate(scores, _linear_flops({0: 24, 1: 4}, {0: 1, 1: 10}), 0.7, scope="uniform", round_to=8)
    assert len(alloc.kept[0]) % 8 == 0 and 1 <= len(alloc.kept[1]) <= 4  # the 4-channel group is not rounded
    assert alloc.removed >= 0.7


def test_ratio_zero_keeps_everything_and_unreachable_raises() -> None:
    scores = {0: np.arange(16, dtype=float)}
    flops = _linear_flops({0: 16}, {0: 1})
    assert len(allocate(scores, flops, 0.0).kept[0]) == 16
    with pytest.raises(PruneError, match=r"at most 50.0% of the FLOPs") as err:
        allocate(scores, flops, 0.9, round_to=8)
    assert "--ratio 0.50" in (err.value.hint or "")
