"""When and how much: pure functions from a FLOPs target to kept channels per group.

* :func:`step_ratios`: cumulative targets for pruning in several steps.
* :func:`allocate`: the channels each group keeps so that at least ``ratio`` of the FLOPs
  go, with either one **global** threshold on (normalised) scores across all groups, as
  Network Slimming does, or the same fraction removed from every group (**uniform**).
  Every group keeps at least one channel (and one per Split/Slice segment), and the kept
  count is rounded *up* to a multiple of ``round_to`` unless the group is smaller than
  that: unaligned channel counts can leave TensorRT's kernels as slow as before
  (NVIDIA/TensorRT#3884).

No graph here: the FLOPs of a candidate come from a callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgesdk.errors import PruneError

Scope = Literal["global", "uniform"]
Kept = dict[int, np.ndarray]
FlopsFn = Callable[[Kept], float]
"""The cost the budget counts (FLOPs, or predicted ms) of a candidate."""


def step_ratios(ratio: float, steps: int = 1) -> list[float]:
    """Cumulative FLOPs-removal targets for ``steps`` rounds ending at ``ratio``.

    Each round removes the same fraction of what is left (geometric), e.g. 0.5 in 2
    steps -> [0.293, 0.5].

    Raises:
        PruneError: ratio outside [0, 1) or steps < 1.
    """
    if not 0.0 <= ratio < 1.0 or steps < 1:
        raise PruneError(f"ratio must be in [0, 1) and steps >= 1, got ratio={ratio}, steps={steps}")
    keep = 1.0 - ratio
    return [1.0 - keep ** ((i + 1) / steps) for i in range(steps)]


def round_kept(count: int, size: int, round_to: int) -> int:
    """``count`` clamped to ``1..size`` and rounded up to a multiple of ``round_to`` (groups
    smaller than ``round_to`` are not rounded)."""
    count = max(1, min(int(count), size))
    if round_to <= 1 or size < round_to:
        return count
    return min(size, math.ceil(count / round_to) * round_to)


def top_k(scores: np.ndarray, k: int, segments: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Indices (ascending) of the ``k`` highest scores, plus the best of any empty segment.

    Ties keep the lower index.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    kept = set(order[:k].tolist())
    for segment in segments:
        if not kept.intersection(segment.tolist()):
            kept.add(int(segment[np.argmax(scores[segment])]))
    return np.array(sorted(kept), dtype=np.int64)


@dataclass(frozen=True)
class Allocation:
    """Result of :func:`allocate`.

    Attributes:
        kept: group id -> kept group channels (ascending), for every scored group.
        flops: the cost (FLOPs, or what ``flops_of`` counts) with that choice.
        removed: fraction of the original FLOPs removed (>= the target).
    """

    kept: Kept
    flops: float
    removed: float


def _counts_global(scores: Mapping[int, np.ndarray], threshold: float) -> dict[int, int]:
    return {gid: int((s >= threshold).sum()) for gid, s in scores.items()}


def _counts_uniform(scores: Mapping[int, np.ndarray], fraction: float) -> dict[int, int]:
    return {gid: math.ceil((1.0 - fraction) * len(s) - 1e-9) for gid, s in scores.items()}


def allocate(
    scores: Mapping[int, np.ndarray],
    flops_of: FlopsFn,
    ratio: float,
    *,
    scope: Scope = "global",
    round_to: int = 8,
    segments: Mapping[int, Sequence[np.ndarray]] | None = None,
) -> Allocation:
    """Choose the kept channels of every scored group so that >= ``ratio`` of the FLOPs go.

    Args:
        scores: group id -> score per group channel (normalised for a global threshold).
        flops_of: cost of the model (FLOPs, or predicted ms) when the groups keep the given channels.
        ratio: fraction of the FLOPs to remove, in [0, 1).
        scope: ``global`` (one score threshold for all groups) or ``uniform`` (the same
            fraction of channels from each group).
        round_to: kept counts are rounded up to a multiple of this.
        segments: group id -> channel ranges that each keep >= 1 channel.

    Returns:
        The smallest cut (lowest threshold / fraction) that reaches the target.

    Raises:
        PruneError: the target cannot be reached even with every group at its minimum.
    """
    segs = segments or {}
    base = flops_of({gid: np.arange(len(s)) for gid, s in scores.items()})

    def choose(counts: Mapping[int, int]) -> Kept:
        return {
            gid: top_k(scores[gid], round_kept(n, len(scores[gid]), round_to), segs.get(gid, ()))
            for gid, n in counts.items()
        }

    def removed(kept: Kept) -> float:
        return 1.0 - flops_of(kept) / base if base else 0.0

    if scope == "global":
        levels = np.unique(np.concatenate([np.asarray(s, np.float64) for s in scores.values()]))
        candidates: Sequence[float] = [*levels.tolist(), math.inf]
        counts_at: Callable[[float], dict[int, int]] = lambda t: _counts_global(scores, t)  # noqa: E731
    else:
        candidates = list(np.linspace(0.0, 1.0, 1025))
        counts_at = lambda f: _counts_uniform(scores, f)  # noqa: E731
    lo, hi = 0, len(candidates) - 1
    best = choose(counts_at(candidates[hi]))
    most = removed(best)
    if most + 1e-12 < ratio:
        raise PruneError(
            f"at most {most:.1%} of the FLOPs can be removed from this model (asked {ratio:.1%}) with "
            f"round-to {round_to} and at least one channel per group",
            hint=f"use --ratio {math.floor(most * 100) / 100:.2f} or lower (or a smaller --round-to)",
        )
    first = choose(counts_at(candidates[0]))
    if removed(first) >= ratio:
        return Allocation(first, flops_of(first), removed(first))
    while hi - lo > 1:  # invariant: removed(lo) < ratio <= removed(hi)
        mid = (lo + hi) // 2
        kept = choose(counts_at(candidates[mid]))
        if removed(kept) >= ratio:
            hi, best = mid, kept
        else:
            lo = mid
    return Allocation(best, flops_of(best), removed(best))
