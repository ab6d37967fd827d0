"""Data-driven criteria: ThiNet and LASSO, scored from what the NEXT layers see.

Both look at the consumers of a group (the Conv/Gemm layers reading its channels as input
channels). On sampled (image, output position, output channel) rows, channel ``g``'s
contribution to that consumer output is ``z_g = sum_k W[o, g, k] * x[g, k]`` (its share of
the convolution sum). Removing a set ``T`` of channels changes the consumer output by
``sum_{g in T} z_g``. Everything both methods need is the per-group Gram matrix
``G = sum_rows z z^T``, with each consumer's rows divided by that consumer's output energy
(so errors are fractions of each next layer's output, comparable across layers).

* ``thinet`` (Luo et al. 2017): greedily remove the channel whose removal least increases
  ``|| sum_{T} z ||^2``; a channel's score is the (running-max) relative error reached when
  it goes, so a global threshold is a bound on the next layers' relative output error.
* ``lasso`` (He et al. 2017): ``min_b 1/2 ||Z 1 - Z b||^2 + lambda ||b||_1`` along a
  decreasing lambda path (coordinate descent on ``G``); a channel's score is how early it
  enters the path (``1 + log10(lambda_enter / lambda_max) / 4``).

Both plans ask for least-squares reconstruction of the consumers after slicing
(:mod:`edgesdk.slim.reconstruct`). Samples come from ``ctx.extras["feeds"]`` (calibration
images); the Gram matrices are computed once per plan and cached in ``ctx.extras``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import PruneError
from edgesdk.graph._util import constant_value, static_shape
from edgesdk.slim.activations import ConvWindow, Probe, patches, sample_positions
from edgesdk.slim.criteria import ScoreContext, Unscorable, register_criterion
from edgesdk.slim.groups import ChannelGroup, Member

POSITIONS = 32
"""Output positions sampled per image and consumer."""
CHANNELS = 4
"""Output channels sampled per position."""
LASSO_PATH = 24
"""Lambda values on the LASSO path (geometric, lambda_max down to 1e-4 lambda_max)."""


@dataclass
class _Consumer:
    """One consumer node and the groups it reads, with their Gram accumulators."""

    node: gs.Node
    tensor: str
    members: list[tuple[int, Member]]
    grams: dict[int, np.ndarray] = field(default_factory=dict)
    energy: float = 0.0


def _weights(node: gs.Node) -> np.ndarray:
    """The consumer's weights as ``[O, Cin, k]``."""
    weight = np.asarray(constant_value(node.inputs[1]), dtype=np.float32)
    if node.op == "Gemm":
        weight = weight if int(node.attrs.get("transB", 0)) else weight.T
        return weight[:, :, None]
    return weight.reshape(weight.shape[0], weight.shape[1], -1)


def contributions(node: gs.Node, x: np.ndarray, rng: np.random.Generator, weight: np.ndarray) -> np.ndarray:
    """Per sampled output row, each input channel's share of the consumer's output: ``[rows, Cin]``.

    Args:
        node: a Conv (group 1) or Gemm consumer.
        x: one image's input (``[C, H, W]``) or, for Gemm, the whole ``[N, K]`` input.
        rng: picks positions and output channels.
        weight: :func:`_weights` of ``node``.
    """
    out_channels = weight.shape[0]
    if node.op == "Gemm":
        rows = x  # [N, K]: every row is a sample
        picks = rng.integers(0, out_channels, size=(len(rows), CHANNELS))
        return (weight[picks, :, 0] * rows[:, None, :]).reshape(-1, rows.shape[1])
    out = static_shape(node.outputs[0])
    if out is None:
        raise PruneError(f"cannot sample {node.name!r}: output shape unknown")
    oy, ox = sample_positions(rng, (out[2], out[3]), POSITIONS)
    window_patches = patches(x, ConvWindow.of(node), oy, ox)  # [S, Cin, k]
    picks = rng.integers(0, out_channels, size=(len(oy), CHANNELS))
    share = np.einsum("srck,sck->src", weight[picks], window_patches, optimize=True)
    return share.reshape(-1, x.shape[0])


def _consumers(ctx: ScoreContext) -> list[_Consumer]:
    found: dict[tuple[str, str], _Consumer] = {}
    for group in ctx.analysis.prunable():
        for member in group.role("consumer"):
            key = (member.node, member.tensor)
            if key not in found:
                found[key] = _Consumer(ctx.node(member.node), member.tensor, [])
            found[key].members.append((group.id, member))
    return list(found.values())


def _accumulate(consumer: _Consumer, share: np.ndarray, sizes: dict[int, int]) -> None:
    consumer.energy += float(np.square(share.sum(axis=1, dtype=np.float64)).sum())
    for gid, member in consumer.members:
        valid = member.index >= 0
        z = np.zeros((share.shape[0], sizes[gid]))
        np.add.at(z.T, member.index[valid], share[:, valid].T)
        consumer.grams[gid] = consumer.grams.get(gid, 0) + z.T @ z


def group_grams(ctx: ScoreContext) -> dict[int, np.ndarray]:
    """Energy-normalised Gram matrix of channel contributions per prunable group (cached).

    Raises:
        PruneError: no calibration feeds in ``ctx.extras["feeds"]``.
    """
    if "_grams" in ctx.extras:
        return dict(ctx.extras["_grams"])
    feeds = ctx.extras.get("feeds")
    if not feeds:
        raise PruneError("data-driven slimming needs calibration images", hint="pass --images DIR")
    consumers = _consumers(ctx)
    sizes = {g.id: g.size for g in ctx.analysis.groups}
    weights = {id(c.node): _weights(c.node) for c in consumers}
    rng = np.random.default_rng(ctx.seed)
    probe = Probe(ctx.graph, [c.tensor for c in consumers])
    for outputs in probe.run(feeds):
        for consumer in consumers:
            x = outputs[consumer.tensor]
            images = [x] if consumer.node.op == "Gemm" else list(x)
            for image in images:
                _accumulate(
                    consumer, contributions(consumer.node, image, rng, weights[id(consumer.node)]), sizes
                )
    grams: dict[int, np.ndarray] = {}
    for consumer in consumers:
        for gid, gram in consumer.grams.items():
            grams[gid] = grams.get(gid, 0) + gram / max(consumer.energy, 1e-30)
    ctx.extras["_grams"] = grams
    ctx.extras["reconstruct"] = True
    return dict(grams)


def _gram(group: ChannelGroup, ctx: ScoreContext) -> np.ndarray:
    gram = group_grams(ctx).get(group.id)
    if gram is None:
        raise Unscorable("no Conv/Gemm reads these channels as input channels")
    return np.asarray(gram, dtype=np.float64)


def thinet_scores(gram: np.ndarray) -> np.ndarray:
    """ThiNet greedy removal on a Gram matrix; score = relative error reached when a channel goes."""
    size = len(gram)
    alive = np.ones(size, dtype=bool)
    cross = np.zeros(size)  # G @ 1_T
    error = 0.0
    reached = np.zeros(size)
    order = np.zeros(size)
    diagonal = np.diag(gram)
    for step in range(size):
        cost = error + 2.0 * cross + diagonal
        cost[~alive] = np.inf
        pick = int(np.argmin(cost))
        error = float(cost[pick])
        cross += gram[:, pick]
        alive[pick] = False
        reached[pick], order[pick] = error, step
    ranked = np.argsort(order)
    reached[ranked] = np.maximum.accumulate(reached[ranked])  # removing more never looks cheaper
    return reached + order * 1e-12


def lasso_scores(gram: np.ndarray, steps: int = LASSO_PATH, iterations: int = 200) -> np.ndarray:
    """LASSO path on ``1/2 ||Z1 - Zb||^2 + lam |b|_1``; score = how early each channel enters.

    Solved with FISTA (accelerated proximal gradient on ``G``) for every lambda of the path
    at once (one column per lambda).
    """
    size = len(gram)
    target = gram.sum(axis=1)  # Z^T y with y = Z 1
    lam_max = float(np.abs(target).max())
    if lam_max <= 0:
        return np.zeros(size)
    lams = lam_max * np.logspace(0, -4, steps)
    step = 1.0 / max(float(np.linalg.eigvalsh(gram)[-1]), 1e-30)
    beta = np.zeros((size, steps))
    momentum, t = beta.copy(), 1.0
    for _ in range(iterations):
        moved = momentum + step * (target[:, None] - gram @ momentum)
        new = np.sign(moved) * np.maximum(np.abs(moved) - step * lams[None, :], 0.0)
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        momentum = new + ((t - 1.0) / t_next) * (new - beta)
        done = np.abs(new - beta).max() < 1e-6
        beta, t = new, t_next
        if done:
            break
    active = beta != 0  # [size, steps], lambdas decreasing
    first = np.where(active.any(axis=1), active.argmax(axis=1), -1)
    scores = np.where(first >= 0, 1.0 + np.log10(lams[np.maximum(first, 0)] / lam_max) / 4.0, 0.0)
    final = np.abs(beta[:, -1])
    return scores + 1e-9 * final / (final.max() + 1e-30)


@register_criterion(
    "thinet", normalize="none", needs_images=True, summary="ThiNet greedy next-layer error (Luo 2017)"
)
def thinet(group: ChannelGroup, ctx: ScoreContext) -> np.ndarray:
    """ThiNet: channels whose removal least changes the next layers' outputs go first."""
    return _allocated(group, ctx, thinet_scores(_gram(group, ctx)))


@register_criterion("lasso", normalize="none", needs_images=True, summary="LASSO channel selection (He 2017)")
def lasso(group: ChannelGroup, ctx: ScoreContext) -> np.ndarray:
    """LASSO regression on channel contributions; channels dropped earliest on the path go first."""
    return _allocated(group, ctx, lasso_scores(_gram(group, ctx)))


def _allocated(group: ChannelGroup, ctx: ScoreContext, order: np.ndarray) -> np.ndarray:
    """The criterion's order within the group; across groups, the measured output damage per FLOP
    (:mod:`edgesdk.slim.sensitivity`) unless ``ctx.extras["allocation"] == "layer-error"``."""
    if ctx.extras.get("allocation", "sensitivity") == "layer-error":
        return order
    from edgesdk.slim.sensitivity import sensitivity_scores

    return sensitivity_scores(group, ctx, order)
