"""Least-squares reconstruction: refit the layers that lost input channels.

After slicing, every consumer (Conv with ``group=1``, Gemm) whose input lost channels gets
new weights and bias solving ``min ||X_kept W' + b' - Y||^2`` (ridge-regularised), where
``Y`` is what the ORIGINAL layer computed on the calibration images and ``X_kept`` is what
the SLIM model now feeds it (He et al. 2017; ThiNet's rescaling is the special case of one
scale per channel). Consumers are refitted level by level in graph order, so a layer is
fitted on inputs already produced by refitted upstream layers (errors do not pile up).

Option ``activation_aware``: a few reweighted passes that fit what the following
Relu/LeakyRelu/PRelu/Clip lets through rather than the pre-activation output (docs/slim.md).

Invariants: shapes, names and attributes are untouched; only the consumers' weight and
bias constants change (a bias input is added where a layer had none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, is_empty_input, static_shape
from edgesdk.graph.io import to_graph
from edgesdk.slim.activations import ConvWindow, Feed, Probe, patches, positions_per_image, sample_positions
from edgesdk.slim.apply import Reconstructor
from edgesdk.slim.aware import AWARE_MAX_FLOPS, Activation, activation_after, aware_solution
from edgesdk.slim.groups import ChannelAnalysis, prepare
from edgesdk.slim.handlers import set_const

if TYPE_CHECKING:
    from edgesdk.slim.joint import Block

log = logging.getLogger(__name__)

RIDGE = 1e-4
"""Ridge strength relative to the mean diagonal of ``X^T X``."""
ROWS_PER_UNKNOWN = 40
"""Sampled output positions per unknown of a layer's fit (spread over the calibration images).

40 rather than a bare minimum: the fit generalises to the positions it did not see only with many
equations per unknown (at 3, mAP50 after a 30 % cut was 1.5-6.4 points lower on yolov5n, yolox-nano
and retinaface-mnet; docs/benchmarks.md, slimming round 9)."""
ROWS_PER_IMAGE = (32, 4096)
"""Bounds on the sampled positions per image."""


@dataclass
class _Target:
    """One consumer to refit: where it was sampled and what the original computed there."""

    name: str
    out_mask: np.ndarray | None
    positions: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)


def _rows(node: gs.Node, x: np.ndarray, oy: np.ndarray, ox: np.ndarray) -> np.ndarray:
    """Inputs of the sampled rows: conv patches ``[S, C*k]`` or Gemm rows ``[N, K]``."""
    if node.op == "Gemm":
        return x
    return patches(x, ConvWindow.of(node), oy, ox).reshape(len(oy), -1)


def weight_matrix(node: gs.Node) -> tuple[np.ndarray, np.ndarray]:
    """``(W [O, C*k], b [O])`` such that ``rows @ W.T + b`` is the layer's output."""
    weight = np.asarray(constant_value(node.inputs[1]), dtype=np.float64)
    if node.op == "Gemm":
        weight = weight if int(node.attrs.get("transB", 0)) else weight.T
    weight = weight.reshape(weight.shape[0], -1)
    bias_input = node.inputs[2] if len(node.inputs) > 2 and not is_empty_input(node.inputs[2]) else None
    bias = (
        np.zeros(weight.shape[0])
        if bias_input is None
        else np.asarray(constant_value(bias_input), np.float64)
    )
    return weight, np.broadcast_to(bias.reshape(-1), (weight.shape[0],)).copy()


def _refittable(node: gs.Node) -> bool:
    if node.op == "Gemm":
        plain = float(node.attrs.get("alpha", 1.0)) == 1.0 and float(node.attrs.get("beta", 1.0)) == 1.0
        return plain and not int(node.attrs.get("transA", 0))
    return (
        node.op == "Conv"
        and int(node.attrs.get("group", 1)) == 1
        and len(static_shape(node.inputs[1]) or ()) == 4
    )


def downstream_nodes(graph: gs.Graph, changed: set[str]) -> set[str]:
    """Names of the nodes that read, directly or not, a tensor in ``changed``."""
    dirty = set(changed)
    found = set()
    for node in graph.nodes:
        if any(t.name in dirty for t in node.inputs):
            found.add(node.name)
            dirty.update(t.name for t in node.outputs)
    return found


def levels_above(graph: gs.Graph, names: set[str]) -> dict[str, int]:
    """For each node in ``names``, how many of them lie on the longest path above it (fit order)."""
    depth: dict[str, int] = {}
    levels: dict[str, int] = {}
    for node in graph.nodes:
        d = max((depth.get(t.name, 0) for t in node.inputs), default=0)
        if node.name in names:
            levels[node.name] = d
            d += 1
        for tensor in node.outputs:
            depth[tensor.name] = d
    return levels


def _positions_per_image(node: gs.Node, images: int) -> int:
    """Enough rows for ``ROWS_PER_UNKNOWN`` equations per unknown (``C*k + 1`` per output)."""
    shape = static_shape(node.inputs[1]) or (1, 1)
    unknowns = int(np.prod(shape[1:])) + 1
    return positions_per_image(unknowns, images, ROWS_PER_UNKNOWN, ROWS_PER_IMAGE)


def _sample_targets(
    original: gs.Graph, targets: dict[str, _Target], feeds: Sequence[Feed], rng: np.random.Generator
) -> None:
    nodes = {n.name: n for n in original.nodes}
    images = sum(len(next(iter(f.values()))) for f in feeds)
    probe = Probe(original, [nodes[name].inputs[0].name for name in targets])
    for outputs in probe.run(feeds):
        for name, target in targets.items():
            node = nodes[name]
            weight, bias = weight_matrix(node)
            if target.out_mask is not None:
                weight, bias = weight[target.out_mask], bias[target.out_mask]
            batch = outputs[node.inputs[0].name]
            for x in [batch] if node.op == "Gemm" else list(batch):
                if node.op == "Gemm":
                    oy = ox = np.zeros(0, dtype=np.int64)
                else:
                    shape = static_shape(node.outputs[0]) or (0, 0, 1, 1)
                    oy, ox = sample_positions(rng, (shape[2], shape[3]), _positions_per_image(node, images))
                target.positions.append((oy, ox))
                target.targets.append((_rows(node, x, oy, ox) @ weight.T + bias).astype(np.float32))


def _solve(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    ridge = RIDGE * float(np.mean(np.diag(xtx))) + 1e-12
    system = xtx + ridge * np.eye(len(xtx))
    try:
        return np.linalg.solve(system, xty)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(system, xty, rcond=None)[0]


def write_solution(node: gs.Node, solution: np.ndarray) -> None:
    """Write a fit's ``[C*k + 1, O]`` solution (bias last) into ``node``'s weight and bias."""
    weight, bias = solution[:-1].T, solution[-1]  # [O, C*k], [O]
    old = np.asarray(constant_value(node.inputs[1]))
    if node.op == "Gemm" and not int(node.attrs.get("transB", 0)):
        set_const(node, 1, weight.T.astype(old.dtype))
    else:
        set_const(node, 1, weight.reshape(old.shape).astype(old.dtype))
    if len(node.inputs) > 2 and not is_empty_input(node.inputs[2]):
        old_bias = np.asarray(constant_value(node.inputs[2]))
        shape = old_bias.shape if old_bias.size == bias.size else bias.shape  # a broadcast Gemm C grows
        set_const(node, 2, bias.astype(np.float32).reshape(shape))
    elif len(node.inputs) > 2:  # an empty optional bias input
        node.inputs[2] = gs.Constant(f"{node.name}__bias", bias.astype(np.float32))
    else:
        node.inputs.append(gs.Constant(f"{node.name}__bias", bias.astype(np.float32)))


def _aware_fits(graph: gs.Graph, node: gs.Node, target: _Target) -> Activation | None:
    """The activation after ``node`` if the weighted fit is affordable (else None: plain fit)."""
    act = activation_after(node, any(t.name == node.outputs[0].name for t in graph.outputs))
    if act is None:
        return None
    count = sum(len(t) for t in target.targets)
    width = int(np.prod((static_shape(node.inputs[1]) or (1, 1))[1:])) + 1
    outputs = target.targets[0].shape[1] if target.targets else 0
    if count * width * width * outputs > AWARE_MAX_FLOPS:
        log.info(
            "%s: activation-aware fit too large (%d x %d^2 x %d), plain fit", node.name, count, width, outputs
        )
        return None
    return act


def _refit_level(
    graph: gs.Graph,
    names: list[str],
    targets: dict[str, _Target],
    feeds: Sequence[Feed],
    aware: bool = False,
) -> None:
    nodes = {n.name: n for n in graph.nodes}
    probe = Probe(graph, [nodes[name].inputs[0].name for name in names])
    acts = {name: _aware_fits(graph, nodes[name], targets[name]) if aware else None for name in names}
    sums: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    kept: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {name: ([], []) for name in names}
    counters = dict.fromkeys(names, 0)
    for outputs in probe.run(feeds):
        for name in names:
            node, target = nodes[name], targets[name]
            batch = outputs[node.inputs[0].name]
            for x in [batch] if node.op == "Gemm" else list(batch):
                oy, ox = target.positions[counters[name]]
                y = target.targets[counters[name]].astype(np.float64)
                counters[name] += 1
                rows = _rows(node, x, oy, ox).astype(np.float64)
                rows = np.concatenate([rows, np.ones((len(rows), 1))], axis=1)
                xtx, xty = sums.get(name, (0.0, 0.0))
                sums[name] = (xtx + rows.T @ rows, xty + rows.T @ y)  # type: ignore[assignment]
                if acts[name] is not None:
                    kept[name][0].append(rows.astype(np.float32))
                    kept[name][1].append(y.astype(np.float32))
    for name in names:
        solution = _solve(*sums[name])
        act = acts[name]
        if act is not None:
            mask = targets[name].out_mask  # over the original channels; a pruned PRelu is already cut
            if mask is not None and np.size(act.slope) == len(mask) > 1:
                act = replace(act, slope=np.asarray(act.slope)[mask])
            rows, y = np.concatenate(kept[name][0]), np.concatenate(kept[name][1])
            kept[name] = ([], [])
            solution = aware_solution(name, rows, y, act, solution, ridge=RIDGE)
        write_solution(nodes[name], solution)


def refit(
    graph: gs.Graph,
    analysis: ChannelAnalysis,
    kept: Mapping[int, Sequence[int]],
    original: onnx.ModelProto,
    feeds: Sequence[Feed],
    *,
    seed: int = 0,
    downstream: bool = False,
    activation_aware: bool = False,
    joint: int = 0,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Refit, in place, every consumer of ``graph`` whose input lost channels.

    Args:
        graph: the pruned graph (``apply_masks`` done).
        analysis / kept: what was pruned (the analysis of the unpruned graph).
        original: the unpruned model (targets are computed on it).
        feeds: calibration feeds.
        seed: for the sampled positions.
        downstream: refit every refittable layer below a cut (not only the direct consumers).
        activation_aware: weigh each row by where the activation after the layer is flat
            (:func:`activation_weights`; a few reweighted passes), for the layers followed by
            exactly one Relu/LeakyRelu/PRelu/Clip and small enough (:data:`AWARE_MAX_FLOPS`).
        joint: Adam steps of the joint refit (:mod:`edgesdk.slim.joint`): after each level, every
            cut Conv whose output reaches only that level's refitted Convs through per-channel
            steps is fitted together with them. 0: least squares only.
        progress: called with a short text before each level and each joint block.

    Returns:
        The number of layers refitted.
    """
    masks = analysis.keep_masks(kept)
    nodes = {n.name: n for n in graph.nodes}
    if downstream:
        names = sorted(
            downstream_nodes(graph, set(masks)) & {n for n, node in nodes.items() if _refittable(node)}
        )
    else:
        names = sorted(
            {
                m.node
                for g in analysis.groups
                for m in g.role("consumer")
                if m.tensor in masks and m.node in nodes and _refittable(nodes[m.node])
            }
        )
    if not names or not feeds:
        return 0
    targets = {name: _Target(name, masks.get(nodes[name].outputs[0].name)) for name in names}
    unpruned = prepare(to_graph(original))
    _sample_targets(unpruned, targets, feeds, np.random.default_rng(seed))
    levels = levels_above(graph, set(names))
    blocks = _joint_blocks(graph, masks, set(names)) if joint > 0 else {}
    say = progress or (lambda _text: None)
    order, done = sorted(set(levels.values())), 0

    def tick() -> None:
        nonlocal done
        done += 1
        say(f"joint refit, block {done}/{len(blocks)}")

    for index, level in enumerate(order):
        batch = [name for name in names if levels[name] == level]
        log.info("refitting %d layer(s) at level %d", len(batch), level)
        say(f"least-squares refit, level {index + 1}/{len(order)}")
        _refit_level(graph, batch, targets, feeds, activation_aware)
        ready = [b for b in blocks.values() if levels[b.consumers[0].name] == level]
        if ready:
            from edgesdk.slim.joint import joint_refit

            out_masks = {c.name: targets[c.name].out_mask for b in ready for c in b.consumers}
            joint_refit(
                graph, unpruned, ready, out_masks, feeds, iterations=joint, seed=seed, before_block=tick
            )
    return len(names)


def _joint_blocks(graph: gs.Graph, masks: Mapping[str, np.ndarray], fitted: set[str]) -> dict[str, Block]:
    """The cut Convs whose output reaches only least-squares-refitted Convs through per-channel steps."""
    from edgesdk.slim.joint import find_block

    blocks = {}
    for node in graph.nodes:
        if node.op == "Conv" and node.outputs and node.outputs[0].name in masks:
            block = find_block(graph, node)
            if block is not None and all(c.name in fitted for c in block.consumers):
                blocks[node.name] = block
    return blocks


MatchLayers = Literal["refitted", "downstream", "unfitted"]


def refitted_names(analysis: ChannelAnalysis, kept: Mapping[int, Sequence[int]]) -> set[str]:
    """Names of the consumers reading a cut tensor (what :func:`refit` fits when they are refittable)."""
    masks = analysis.keep_masks(kept)
    return {m.node for g in analysis.groups for m in g.role("consumer") if m.tensor in masks}


def reconstructor(
    original: onnx.ModelProto,
    feeds: Sequence[Feed],
    *,
    seed: int = 0,
    match: Literal["affine", "mean"] | None = None,
    match_layers: MatchLayers = "refitted",
    activation_aware: bool = False,
    joint: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Reconstructor:
    """A reconstruction step for :func:`edgesdk.slim.apply.apply_plan` (see :func:`refit`).

    Args:
        original / feeds / seed: as :func:`refit`.
        match: after the refit, match conv output statistics to the original's
            (:func:`edgesdk.slim.statmatch.match_statistics`; ``affine``: mean and spread, ``mean``:
            mean only); None: refit only.
        match_layers: which convs: ``refitted`` (the consumers of cut channels: undoes the
            least-squares fit's shrinkage of their outputs' spread), ``downstream`` (every conv
            below a cut) or ``unfitted`` (the downstream ones the refit did not fit).
        activation_aware / joint / progress: as :func:`refit`.
    """

    def run(graph: gs.Graph, analysis: ChannelAnalysis, kept: Mapping[int, Sequence[int]]) -> None:
        refit(
            graph, analysis, kept, original, feeds, seed=seed, activation_aware=activation_aware, joint=joint
        )
        if match is None:
            return
        from edgesdk.slim.statmatch import match_statistics

        fitted = refitted_names(analysis, kept)
        skip: set[str] = set()
        if match_layers == "refitted":
            skip = {n.name for n in graph.nodes} - fitted
        elif match_layers == "unfitted":
            skip = fitted
        match_statistics(graph, original, analysis.keep_masks(kept), feeds, mode=match, skip=skip)

    return run
