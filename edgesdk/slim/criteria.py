"""What to cut: importance criteria, one score per group channel (higher = more important).

A criterion is a callable ``(group, ctx) -> 1-D float64 array of length group.size``,
registered by name with :func:`register_criterion` (duplicates raise). It raises
:class:`Unscorable` when it cannot score a group (e.g. ``bn`` on channels no
BatchNormalization carries); the planner then keeps that group whole and says why.

Built in here:

* ``l1`` (Li et al. 2017, "Pruning Filters for Efficient ConvNets"): the L1 norm of each
  source filter, summed over the group's sources (a residual group has several).
* ``bn`` (Liu et al. 2017, "Network Slimming"): ``|gamma|`` of the BatchNormalization
  that carries the channel, summed over the group's BN nodes. Needs unfused BN.
* ``random``: seeded uniform scores, for tests and as a baseline.

The data-driven criteria (ThiNet, LASSO, SSS) live in their own modules and register
themselves the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import EdgeSdkInternalError, PruneError
from edgesdk.graph._util import constant_value
from edgesdk.slim.groups import ChannelAnalysis, ChannelGroup, Member

Normalizer = Literal["mean", "max", "none"]
F = TypeVar("F", bound=Callable[..., Any])


class Unscorable(Exception):
    """A criterion cannot score this group; ``str(err)`` says why (shown in the plan)."""


@dataclass
class ScoreContext:
    """What a criterion may look at.

    Attributes:
        graph: the prepared graph (read only).
        analysis: its channel groups.
        seed: for criteria that sample.
        extras: per-method inputs (e.g. activation samples for data-driven criteria).
    """

    graph: gs.Graph
    analysis: ChannelAnalysis
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    _nodes: dict[str, gs.Node] = field(default_factory=dict, repr=False)

    def node(self, name: str) -> gs.Node:
        """The node called ``name``."""
        if not self._nodes:
            self._nodes.update({n.name: n for n in self.graph.nodes})
        return self._nodes[name]


Criterion = Callable[[ChannelGroup, ScoreContext], np.ndarray]
"""Scores the channels of one group: ``(group, ctx) -> [group.size]``."""

Kind = Literal["channel", "block"]


@dataclass(frozen=True)
class CriterionInfo:
    """A registered criterion.

    Attributes:
        name: what ``--method`` calls it.
        fn: the scoring callable.
        normalize: how scores are made comparable across groups for a global threshold:
            ``mean`` (divide by the group's mean), ``max``, or ``none`` (raw, as Network
            Slimming compares BN gammas).
        needs_images: whether the method samples activations from images.
        summary: one line for ``--help`` and reports.
        kind: ``channel`` (``fn`` is a :data:`Criterion`) or ``block`` (``fn`` scores whole
            residual branches, see :mod:`edgesdk.slim.blocks`).
    """

    name: str
    fn: Callable[..., Any]
    normalize: Normalizer
    needs_images: bool
    summary: str
    kind: Kind = "channel"


_CRITERIA: dict[str, CriterionInfo] = {}


def register_criterion(
    name: str,
    *,
    normalize: Normalizer = "mean",
    needs_images: bool = False,
    summary: str = "",
    kind: Kind = "channel",
) -> Callable[[F], F]:
    """Register a criterion under ``name``.

    Raises:
        EdgeSdkInternalError: ``name`` is taken.
    """

    def register(fn: F) -> F:
        if name in _CRITERIA:
            raise EdgeSdkInternalError(f"criterion {name!r} registered twice")
        _CRITERIA[name] = CriterionInfo(
            name, fn, normalize, needs_images, summary or (fn.__doc__ or "").strip(), kind
        )
        return fn

    return register


def _load() -> None:
    """Import the modules that register more criteria (data-driven ones)."""
    import edgesdk.slim.blocks  # noqa: F401
    import edgesdk.slim.datadriven  # noqa: F401


def criterion(name: str) -> CriterionInfo:
    """The criterion called ``name``.

    Raises:
        PruneError: unknown name; lists the known ones.
    """
    _load()
    if name not in _CRITERIA:
        raise PruneError(
            f"unknown slimming method {name!r}", hint=f"known methods: {', '.join(criterion_names())}"
        )
    return _CRITERIA[name]


def criterion_names() -> list[str]:
    """Registered criteria, sorted."""
    _load()
    return sorted(_CRITERIA)


def normalize(scores: np.ndarray, how: Normalizer) -> np.ndarray:
    """Scores made comparable across groups (see :class:`CriterionInfo`)."""
    scores = np.asarray(scores, dtype=np.float64)
    if how == "none" or not len(scores):
        return scores
    scale = scores.mean() if how == "mean" else scores.max()
    return scores / scale if scale > 0 else np.zeros_like(scores)


def accumulate(group: ChannelGroup, member: Member, per_position: np.ndarray, out: np.ndarray) -> None:
    """Add ``per_position`` (one value per channel of ``member``'s tensor) into ``out`` by group channel."""
    valid = member.index >= 0
    np.add.at(out, member.index[valid], np.asarray(per_position, dtype=np.float64)[valid])


# --------------------------------------------------------------------------- built-ins


def _filter_norms(node: gs.Node) -> np.ndarray:
    """L1 norm of each output channel's weights of a Conv or Gemm."""
    weight = constant_value(node.inputs[1])
    if weight is None:
        raise EdgeSdkInternalError(f"source {node.name} has no constant weight")
    weight = np.abs(np.asarray(weight, dtype=np.float64))
    if node.op == "Gemm" and not int(node.attrs.get("transB", 0)):
        weight = weight.T
    return weight.reshape(weight.shape[0], -1).sum(axis=1)


@register_criterion("l1", normalize="mean", summary="L1 norm of each filter (Li et al. 2017)")
def l1_norm(group: ChannelGroup, ctx: ScoreContext) -> np.ndarray:
    """L1 norm of each filter (Li et al. 2017), summed over the group's source layers."""
    scores = np.zeros(group.size)
    sources = group.role("source")
    if not sources:
        raise Unscorable("no Conv/Gemm creates these channels")
    for member in sources:
        accumulate(group, member, _filter_norms(ctx.node(member.node)), scores)
    return scores


@register_criterion("bn", normalize="none", summary="|gamma| of the BatchNormalization (Network Slimming)")
def bn_gamma(group: ChannelGroup, ctx: ScoreContext) -> np.ndarray:
    """|gamma| of the BatchNormalization carrying each channel (Liu et al. 2017)."""
    scores = np.zeros(group.size)
    found = False
    for member in group.members:
        node = ctx.node(member.node)
        if member.op != "BatchNormalization" or node.inputs[0].name != member.tensor:
            continue
        gamma = constant_value(node.inputs[1])
        if gamma is not None:
            accumulate(group, member, np.abs(np.asarray(gamma, dtype=np.float64)), scores)
            found = True
    if not found:
        raise Unscorable("no BatchNormalization carries these channels (bn needs unfused BN)")
    return scores


@register_criterion("random", normalize="none", summary="seeded random scores (tests, baseline)")
def random_scores(group: ChannelGroup, ctx: ScoreContext) -> np.ndarray:
    """Uniform random scores, reproducible from ``ctx.seed`` and the group id."""
    return np.random.default_rng([ctx.seed, group.id]).random(group.size)
