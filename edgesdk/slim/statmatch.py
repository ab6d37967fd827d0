"""Statistics matching: give every conv of the pruned model its original output statistics back.

Without fine-tuning, a pruned model's later layers see inputs whose per-channel mean and
spread have drifted (EagleEye, Li et al. ECCV 2020: re-estimating BatchNorm statistics of a
pruned net on a few batches recovers much of its accuracy without training). Here
BatchNorm is folded into the convs, so the same correction is an affine rescale of each
conv output channel: on the calibration images, in topological order, measure channel
``c``'s pre-activation mean ``m'`` and standard deviation ``s'`` in the CURRENTLY corrected
pruned model and set ``y <- (y - m') * s / s' + m`` so it matches the ORIGINAL model's same
channel (``m``, ``s``; kept channels map to their original index through the plan's masks):
``W <- W * s / s'``, ``b <- (b - m') * s / s' + m``.

Only convs downstream of a cut are touched (the others compute what they computed), level by
level (a conv is measured after every corrected conv above it), so corrections do not pile up.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, is_empty_input
from edgesdk.graph.io import to_graph
from edgesdk.slim.activations import Feed, Probe
from edgesdk.slim.groups import prepare
from edgesdk.slim.handlers import set_const
from edgesdk.slim.reconstruct import downstream_nodes, levels_above

log = logging.getLogger(__name__)

Mode = Literal["affine", "mean"]
MAX_SCALE = 4.0
"""Rescales are clipped to ``[1 / MAX_SCALE, MAX_SCALE]`` (a near-dead channel is not blown up)."""
MIN_STD = 1e-6
"""Channels whose pruned or original spread is below this (relative to the layer's mean spread)
only get their mean matched."""


@dataclass
class _Moments:
    """Running per-channel sums over (images, rows, columns)."""

    total: np.ndarray
    squares: np.ndarray
    count: int = 0

    @classmethod
    def empty(cls, channels: int) -> _Moments:
        return cls(np.zeros(channels), np.zeros(channels))

    def add(self, y: np.ndarray) -> None:
        """Accumulate one ``[N, C, ...]`` batch."""
        flat = np.moveaxis(y, 1, 0).reshape(y.shape[1], -1).astype(np.float64)
        self.total += flat.sum(axis=1)
        self.squares += np.square(flat).sum(axis=1)
        self.count += flat.shape[1]

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Per channel ``(mean, std)``."""
        mean = self.total / max(1, self.count)
        return mean, np.sqrt(np.maximum(self.squares / max(1, self.count) - mean * mean, 0.0))


def _moments(graph: gs.Graph, names: Sequence[str], feeds: Sequence[Feed]) -> dict[str, _Moments]:
    probe = Probe(graph, list(names))
    found: dict[str, _Moments] = {}
    for outputs in probe.run(feeds):
        for name in names:
            y = outputs[name]
            found.setdefault(name, _Moments.empty(y.shape[1])).add(y)
    return found


def _correct(
    node: gs.Node, now: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], mode: Mode
) -> None:
    (m_now, s_now), (m_want, s_want) = now, want
    floor = MIN_STD * max(float(np.mean(s_want)), 1e-30)
    scale = np.ones_like(m_now)
    if mode == "affine":
        ok = (s_now > floor) & (s_want > floor)
        scale[ok] = np.clip(s_want[ok] / s_now[ok], 1.0 / MAX_SCALE, MAX_SCALE)
    weight = np.asarray(constant_value(node.inputs[1]))
    has_bias = len(node.inputs) > 2 and not is_empty_input(node.inputs[2])
    bias = np.asarray(constant_value(node.inputs[2]), np.float64).reshape(-1) if has_bias else 0.0
    new_bias = (bias - m_now) * scale + m_want
    shape = (-1,) + (1,) * (weight.ndim - 1)
    set_const(node, 1, (weight * scale.reshape(shape)).astype(weight.dtype))
    if has_bias:
        set_const(node, 2, new_bias.astype(np.float32))
    elif len(node.inputs) > 2:
        node.inputs[2] = gs.Constant(f"{node.name}__bias", new_bias.astype(np.float32))
    else:
        node.inputs.append(gs.Constant(f"{node.name}__bias", new_bias.astype(np.float32)))


def match_statistics(
    graph: gs.Graph,
    original: onnx.ModelProto,
    masks: Mapping[str, np.ndarray],
    feeds: Sequence[Feed],
    *,
    mode: Mode = "affine",
    skip: Collection[str] = (),
) -> int:
    """Match, in place, each conv output channel of the pruned ``graph`` to the original's statistics.

    Args:
        graph: the pruned (and possibly refitted) graph; node and tensor names as in ``original``.
        original: the unpruned model.
        masks: tensor name -> kept positions of axis 1 (``ChannelAnalysis.keep_masks``), the cut tensors.
        feeds: calibration feeds (the statistics are taken over all their images and positions).
        mode: ``affine`` matches mean and standard deviation; ``mean`` only the mean (a bias shift).
        skip: names of convs to leave as they are (e.g. the ones the least-squares refit fitted).

    Returns:
        The number of convs corrected.
    """
    below = downstream_nodes(graph, set(masks)) - set(skip)
    convs = [
        n for n in graph.nodes if n.name in below and n.op == "Conv" and isinstance(n.inputs[1], gs.Constant)
    ]
    if not convs or not feeds:
        return 0
    names = {n.name for n in convs}
    reference = _moments(prepare(to_graph(original)), [n.outputs[0].name for n in convs], feeds)
    levels = levels_above(graph, names)
    for level in sorted(set(levels.values())):
        batch = [n for n in convs if levels[n.name] == level]
        now = _moments(graph, [n.outputs[0].name for n in batch], feeds)
        for node in batch:
            tensor = node.outputs[0].name
            mean, std = reference[tensor].mean_std()
            mask = masks.get(tensor)
            if mask is not None:
                mean, std = mean[mask], std[mask]
            _correct(node, now[tensor].mean_std(), (mean, std), mode)
    log.info("statistics matched on %d conv(s) in %d level(s)", len(convs), len(set(levels.values())))
    return len(convs)
