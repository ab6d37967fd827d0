"""Sensitivity-aware allocation: how much each group may lose, from the damage to the model's OUTPUTS.

A per-layer error (ThiNet's, LASSO's) says how well the next layer's output survives, not
how much the detections do: the same relative error hurts far more in the first convs or
right before a head than in a wide middle layer. Here every prunable group is pruned
ALONE at a few fractions (its channels taken in the criterion's order), its consumers are
refitted by least squares (as :mod:`edgesdk.slim.reconstruct` will do), and the change of
the graph outputs on a few calibration images is measured. A channel's score is then the
marginal damage per FLOP saved of the step that removes it (running max along the group's
order), so one global threshold on the scores is the Lagrangian allocation "cut where a FLOP
costs least damage" (Li et al. 2017 §4.2 sensitivity analysis; the greedy allocation of
AMC/NetAdapt without the search).

Fast because nothing is sliced: removing channels is equivalent to zeroing the columns
through which the consumers read them (any correct slicing satisfies this), so one
onnxruntime session whose consumer weights and biases are graph INPUTS serves every trial.
Consumer statistics (``A^T A`` of sampled input patches with a bias column) are gathered
once on the unpruned model; a refit for a kept set is one linear solve.

Damage (:mod:`edgesdk.slim.damage`): with the recipe in ``ctx.extras["recipe"]`` (the driver and
deploy pass it), how much the decoded detections changed, plus a small share of the tensor
damage; without it, the tensor damage alone (scale-free per output attribute). Both are means per
damage image (the tensor damage: over image x graph output pairs), so their mix depends neither
on how many images are scored nor on how many outputs the model has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, is_empty_input, quiet_gs, static_shape
from edgesdk.graph.io import onnxruntime_runner, to_model
from edgesdk.slim.activations import ConvWindow, Feed, Probe, patches, positions_per_image, sample_positions
from edgesdk.slim.cost import CostModel, cost_model
from edgesdk.slim.criteria import ScoreContext
from edgesdk.slim.damage import Detector, anchor_weights, disagreement, scales, tensor_error
from edgesdk.slim.groups import ChannelGroup
from edgesdk.slim.latency import cached_latency_model
from edgesdk.slim.schedule import round_kept

log = logging.getLogger(__name__)

FRACTIONS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75)
"""Fractions of a group's channels removed in the trials."""
DAMAGE_IMAGES = 4
"""Calibration images (the first ones) on which the output damage is measured."""
STAT_POSITIONS = 2
"""Sampled output positions per unknown of a consumer's fit (spread over the images), 32..512 per image."""
RIDGE = 1e-4
"""Ridge strength relative to the mean diagonal of ``A^T A``."""
TENSOR_SHARE = 0.1
"""Weight of the tensor damage next to the detection damage (breaks ties where no detection changes);
``ctx.extras["tensor_share"]`` overrides it (measured per model in docs/benchmarks.md, round 7)."""
UNREACHED = 1e6
"""Score offset of channels no trial removed (cut last, in the criterion's order)."""


@dataclass
class _Consumer:
    """A Conv/Gemm reading pruned channels: its weights as ``[O, C*k]`` and its patch statistics."""

    node: gs.Node
    weight: np.ndarray  # [O, C*k] float64
    bias: np.ndarray  # [O]
    kernel: int  # k: kernel area (1 for Gemm)
    weight_input: str
    bias_input: str
    weight_shape: tuple[int, ...]
    refit: bool
    gram: np.ndarray | None = None  # (C*k+1)^2

    def values(self, weight: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
        """The feed entries that give the node these weights."""
        w = weight
        if self.node.op == "Gemm" and not int(self.node.attrs.get("transB", 0)):
            w = w.T
        return {
            self.weight_input: w.reshape(self.weight_shape).astype(np.float32),
            self.bias_input: bias.astype(np.float32),
        }


def _matrix(node: gs.Node) -> tuple[np.ndarray, np.ndarray, int]:
    weight = np.asarray(constant_value(node.inputs[1]), dtype=np.float64)
    kernel = 1
    if node.op == "Gemm":
        weight = weight if int(node.attrs.get("transB", 0)) else weight.T
    else:
        kernel = int(np.prod(weight.shape[2:]))
    weight = weight.reshape(weight.shape[0], -1)
    has_bias = len(node.inputs) > 2 and not is_empty_input(node.inputs[2])
    bias = np.zeros(weight.shape[0])
    if has_bias:
        bias = np.broadcast_to(
            np.asarray(constant_value(node.inputs[2]), np.float64).reshape(-1), (weight.shape[0],)
        ).copy()
    return weight, bias, kernel


def _refittable(node: gs.Node) -> bool:
    if node.op == "Gemm":
        plain = float(node.attrs.get("alpha", 1.0)) == 1.0 and float(node.attrs.get("beta", 1.0)) == 1.0
        return plain and not int(node.attrs.get("transA", 0))
    return node.op == "Conv" and int(node.attrs.get("group", 1)) == 1


class Trials:
    """One session for every trial: the graph with its consumers' weights as inputs (see module doc).

    Args:
        ctx: the planner's context (graph, analysis, ``extras["feeds"]``).
    """

    def __init__(self, ctx: ScoreContext) -> None:
        self.ctx = ctx
        self.costs: CostModel = cost_model(ctx.graph, ctx.analysis)
        self.full = self.costs.flops()
        feeds: Sequence[Feed] = ctx.extras["feeds"]
        self.consumers: dict[str, _Consumer] = {}
        graph = ctx.graph.copy()
        nodes = {n.name: n for n in graph.nodes}
        names = {m.node for g in ctx.analysis.prunable() for m in g.role("consumer")}
        for name in sorted(names):
            self.consumers[name] = self._as_inputs(graph, nodes[name])
        with quiet_gs():
            graph.cleanup()
        self.run = onnxruntime_runner(to_model(graph))
        self.base = {k: v for c in self.consumers.values() for k, v in c.values(c.weight, c.bias).items()}
        self.memo: dict[tuple[int, bytes], float] = {}
        self.eval_feeds = _first_images(feeds, int(ctx.extras.get("damage_images", DAMAGE_IMAGES)))
        self.reference = [self.run({**f, **self.base}) for f in self.eval_feeds]
        self.scale = scales(self.reference)
        self.weights = [anchor_weights(r, self.reference) for r in self.reference]
        recipe = ctx.extras.get("recipe")
        self.detector = Detector(recipe) if recipe is not None else None
        self.detected = [self.detector(r) for r in self.reference] if self.detector is not None else []
        self._statistics(feeds)
        log.info(
            "sensitivity trials: %d consumer(s), %d damage image batch(es)",
            len(self.consumers),
            len(self.eval_feeds),
        )

    def _as_inputs(self, graph: gs.Graph, node: gs.Node) -> _Consumer:
        weight, bias, kernel = _matrix(node)
        shape = tuple(np.asarray(constant_value(node.inputs[1])).shape)
        w_in = gs.Variable(f"{node.name}__sens_w", dtype=np.float32, shape=list(shape))
        b_in = gs.Variable(f"{node.name}__sens_b", dtype=np.float32, shape=[weight.shape[0]])
        node.inputs[1] = w_in
        if len(node.inputs) > 2:
            node.inputs[2] = b_in
        else:
            node.inputs.append(b_in)
        graph.inputs.extend([w_in, b_in])
        return _Consumer(node, weight, bias, kernel, w_in.name, b_in.name, shape, _refittable(node))

    def _statistics(self, feeds: Sequence[Feed]) -> None:
        """``A^T A`` of the refittable consumers' sampled input patches (with a bias column)."""
        todo = [c for c in self.consumers.values() if c.refit]
        if not todo:
            return
        images = sum(len(next(iter(f.values()))) for f in feeds)
        rng = np.random.default_rng(self.ctx.seed)
        nodes = {c.node.name: self.ctx.node(c.node.name) for c in todo}
        probe = Probe(self.ctx.graph, [nodes[c.node.name].inputs[0].name for c in todo])
        for outputs in probe.run(feeds):
            for consumer in todo:
                node = nodes[consumer.node.name]
                batch = outputs[node.inputs[0].name]
                for x in [batch] if node.op == "Gemm" else list(batch):
                    rows = self._rows(node, x, consumer, images, rng)
                    rows = np.concatenate([rows, np.ones((len(rows), 1))], axis=1)
                    gram = rows.T @ rows
                    consumer.gram = gram if consumer.gram is None else consumer.gram + gram

    @staticmethod
    def _rows(
        node: gs.Node, x: np.ndarray, consumer: _Consumer, images: int, rng: np.random.Generator
    ) -> np.ndarray:
        if node.op == "Gemm":
            return x.astype(np.float64)
        out = static_shape(node.outputs[0]) or (0, 0, 1, 1)
        unknowns = consumer.weight.shape[1] + 1
        count = positions_per_image(unknowns, images, STAT_POSITIONS, (32, 512))
        oy, ox = sample_positions(rng, (out[2], out[3]), count)
        return patches(x, ConvWindow.of(node), oy, ox).reshape(len(oy), -1).astype(np.float64)

    def _refitted(self, consumer: _Consumer, kept_inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The consumer's weights with the dropped input channels zeroed (and the rest refitted)."""
        columns = np.repeat(kept_inputs, consumer.kernel)
        weight = np.where(columns[None, :], consumer.weight, 0.0)
        bias = consumer.bias
        if consumer.refit and consumer.gram is not None:
            keep = np.append(columns, True)
            gram = consumer.gram[np.ix_(keep, keep)]
            target = consumer.gram[keep] @ np.append(consumer.weight, consumer.bias[:, None], axis=1).T
            ridge = RIDGE * float(np.mean(np.diag(gram))) + 1e-12
            solution = np.linalg.solve(gram + ridge * np.eye(len(gram)), target)  # [kept+1, O]
            weight = np.zeros_like(consumer.weight)
            weight[:, columns] = solution[:-1].T
            bias = solution[-1]
        return consumer.values(weight, bias)

    def damage(self, group: ChannelGroup, kept: np.ndarray) -> float:
        """Output damage (see module doc) when only ``group`` keeps only ``kept`` (memoised)."""
        key = (group.id, np.asarray(kept, dtype=np.int64).tobytes())
        if key not in self.memo:
            self.memo[key] = self._damage(group, kept)
        return self.memo[key]

    def _damage(self, group: ChannelGroup, kept: np.ndarray) -> float:
        keep = np.zeros(group.size, dtype=bool)
        keep[kept] = True
        inputs: dict[str, np.ndarray] = {}
        for member in group.role("consumer"):
            consumer = self.consumers[member.node]
            mask = inputs.setdefault(member.node, np.ones(consumer.weight.shape[1] // consumer.kernel, bool))
            valid = member.index >= 0
            mask[valid] &= keep[member.index[valid]]
        feed = dict(self.base)
        for name, mask in inputs.items():
            if not mask.all():
                feed.update(self._refitted(self.consumers[name], mask))
        return self._compare(feed)

    def _compare(self, feed: dict[str, np.ndarray]) -> float:
        """Damage of the model with these consumer weights (tensor damage; plus detections' if known).

        Both parts are means PER DAMAGE IMAGE, so their mix does not depend on how many images
        are scored: the detection damage is summed over the images and divided by their count; the
        tensor damage is the mean over (image, graph output) pairs of :func:`tensor_error` (which
        already averages over the images of one batch, so each batch weighs its image count).
        """
        tensor, detection = 0.0, 0.0
        for index, (images, reference) in enumerate(zip(self.eval_feeds, self.reference)):
            outputs = self.run({**images, **feed})
            weights = self.weights[index]
            errors = [
                tensor_error(outputs[k], reference[k], self.scale[k], weights.get(k)) for k in reference
            ]
            tensor += _batch_size(images) * float(np.mean(errors))
            if self.detector is not None:
                pairs = zip(self.detected[index], self.detector(outputs))
                detection += sum(disagreement(r, g, self.detector.threshold) for r, g in pairs)
        tensor /= max(1, sum(_batch_size(images) for images in self.eval_feeds))
        if self.detector is None:
            return tensor
        share = float(self.ctx.extras.get("tensor_share", TENSOR_SHARE))
        return detection / max(1, sum(len(d) for d in self.detected)) + share * tensor

    def flops_saved(self, group: ChannelGroup, kept: np.ndarray) -> int:
        """FLOPs removed when only ``group`` keeps only ``kept``."""
        return self.full - self.costs.flops(self.ctx.analysis.keep_vector({group.id: kept}))

    def saved(self, group: ChannelGroup, kept: np.ndarray) -> float:
        """What the trial saves, in the unit the plan targets: GFLOPs, or predicted ms
        (:mod:`edgesdk.slim.latency`) when ``ctx.extras["target"] == "latency"``."""
        if self.ctx.extras.get("target", "flops") != "latency":
            return self.flops_saved(group, kept) * 1e-9
        model = cached_latency_model(self.ctx)
        return model.ms() - model.ms(self.ctx.analysis.keep_vector({group.id: kept}))


def _batch_size(feed: Feed) -> int:
    """Images in one feed (the first axis of its first input)."""
    return len(next(iter(feed.values())))


def _first_images(feeds: Sequence[Feed], count: int) -> list[Feed]:
    out: list[Feed] = []
    seen = 0
    for feed in feeds:
        if seen >= count:
            break
        out.append(feed)
        seen += _batch_size(feed)
    return out


def trials(ctx: ScoreContext) -> Trials:
    """The (cached) trial session of this plan."""
    if "_trials" not in ctx.extras:
        ctx.extras["_trials"] = Trials(ctx)
    found: Trials = ctx.extras["_trials"]
    return found


def counts(size: int, round_to: int, fractions: Sequence[float] = FRACTIONS) -> list[int]:
    """Channels removed in the trials: ``fractions`` of ``size``, kept counts rounded as planned."""
    removed = {size - round_kept(round(size * (1 - f)), size, round_to) for f in fractions}
    return sorted(n for n in removed if 0 < n < size)


def lower_hull(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the lower convex hull of ``(saved, damage)`` points sorted by ``saved`` (the first
    point, the origin, always included): the steps worth taking, each at its best damage per unit."""
    hull: list[int] = []
    for index, (x, y) in enumerate(points):
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = points[hull[-2]], points[hull[-1]]
            if (y1 - y0) * (x - x0) >= (y - y0) * (x1 - x0):  # the middle point lies on or above the chord
                hull.pop()
            else:
                break
        hull.append(index)
    return hull


def _trial_points(
    group: ChannelGroup, ctx: ScoreContext, ranked: np.ndarray
) -> tuple[list[int], list[tuple[float, float]]]:
    """Removed counts (0 first) and their (saved, damage) trials; a count that saves nothing more
    than the previous one (e.g. inside one padded channel block) is skipped, as is its trial."""
    session = trials(ctx)
    removed, points = [0], [(0.0, 0.0)]
    fractions = ctx.extras.get("fractions", FRACTIONS)
    for n in counts(group.size, int(ctx.extras.get("round_to", 8)), fractions):
        kept = np.sort(ranked[n:])
        saved = session.saved(group, kept)
        if saved - points[-1][0] <= 1e-9 * max(1.0, abs(points[-1][0])):
            continue
        removed.append(n)
        points.append((saved, session.damage(group, kept)))
    return removed, points


def _bounded(level: float) -> float:
    """A strictly increasing map of ``[0, inf)`` into ``[0, UNREACHED / 2)``: the same order, and a
    tried channel always scores below an untried one however large its damage per GFLOP (a tiny
    graph's trials save ~1e-6 GFLOP, so a modest damage already exceeds :data:`UNREACHED`)."""
    return level / (1.0 + 2.0 * level / UNREACHED)


def sensitivity_scores(group: ChannelGroup, ctx: ScoreContext, order: np.ndarray) -> np.ndarray:
    """Per channel, the marginal output damage per GFLOP (per predicted ms when
    ``ctx.extras["target"] == "latency"``) of the trial step that removes it.

    A step's marginal is its damage increase over what it saves, raised to the running maximum
    along the order; a count that saves nothing over the previous one (inside one padded channel
    block of the latency model) is merged into the next step. With the latency target the
    marginals are the slopes of the lower convex hull of the trial points instead (a step that
    saves little for its damage is judged with the next one): measured, that is what turns the
    latency model into time saved, while with FLOPs it cost accuracy (docs/benchmarks.md).
    ``ctx.extras["marginal"]`` (``max`` / ``hull``) overrides the choice.

    Args:
        group: a prunable group.
        ctx: the planner's context (``extras["feeds"]``; ``extras["round_to"]``; optional
            ``extras["fractions"]`` instead of :data:`FRACTIONS`).
        order: the criterion's scores for the group (lower: removed earlier).

    Returns:
        ``[group.size]`` scores, non-decreasing along ``order``: the marginals through
        :func:`_bounded` (same order, below ``UNREACHED / 2``); channels no trial reached score
        above :data:`UNREACHED`.
    """
    ranked = np.argsort(np.asarray(order, dtype=np.float64), kind="stable")  # removal order
    scores = np.empty(group.size)
    scores[ranked] = UNREACHED + np.arange(group.size, dtype=np.float64)
    removed, points = _trial_points(group, ctx, ranked)
    default = "hull" if ctx.extras.get("target", "flops") == "latency" else "max"
    if ctx.extras.get("marginal", default) == "hull":
        steps = lower_hull(points)
    else:
        steps = list(range(len(points)))
        damages = np.maximum.accumulate([p[1] for p in points])  # removing more never looks cheaper
        points = [(x, float(d)) for (x, _), d in zip(points, damages)]
    level = 0.0
    for a, b in zip(steps, steps[1:]):
        (x0, y0), (x1, y1) = points[a], points[b]
        level = max(level, max(y1 - y0, 0.0) / (x1 - x0))
        scores[ranked[removed[a] : removed[b]]] = _bounded(level) + 1e-9 * np.arange(removed[a], removed[b])
    ctx.extras.setdefault("_damage", {})[group.id] = max(p[1] for p in points)
    return scores
