"""``sss``: Sparse Structure Selection on ONNX graphs — remove whole residual branches.

SSS (Huang & Wang 2018) learns a scaling factor per residual branch under a sparsity
penalty and drops the branches whose factor reaches zero, turning ``x + F(x)`` into ``x``.
On a trained ONNX graph there is no factor to read, so the branch's *measured* share of
the residual stream stands in for it: ``score = rms(F(x)) / rms(x)`` over calibration
images. Branches are removed weakest first until the FLOPs target is met. (Models trained
with :func:`edgesdk.torch_helpers.sss_penalty` have near-zero branches for this to find.)

A residual block here is an ``Add(x, r)`` where ``r`` is computed from ``x`` alone by
nodes nothing else reads (the branch), and the Add's output is not a graph output.
FPN-style adds of two independent paths are not residual blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import PruneError
from edgesdk.graph._util import (
    constant_value,
    is_empty_input,
    node_label,
    producer,
    replace_uses,
    static_shape,
)
from edgesdk.slim.activations import Probe
from edgesdk.slim.criteria import ScoreContext, register_criterion

MAX_BRANCH_NODES = 400


@dataclass(frozen=True)
class ResidualBlock:
    """``add`` computes ``shortcut + branch_output``; ``nodes`` compute the branch from the shortcut."""

    add: str
    shortcut: str
    branch_output: str
    nodes: tuple[str, ...]
    flops: int


def node_flops(node: gs.Node) -> int:
    """2 x MACs of a Conv or Gemm with static shapes (0 for anything else)."""
    out = static_shape(node.outputs[0]) if node.outputs else None
    weight = constant_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if out is None or weight is None:
        return 0
    if node.op == "Conv":
        return 2 * math.prod(out) * math.prod(np.shape(weight)[1:])
    if node.op == "Gemm":
        a = static_shape(node.inputs[0])
        return 0 if a is None else 2 * math.prod(out) * a[-1]
    return 0


def _branch(shortcut: gs.Tensor, output: gs.Tensor) -> dict[str, gs.Node] | None:
    """Nodes (by name) computing ``output`` from ``shortcut`` and constants only; None if none."""
    start = producer(output)
    if start is None:
        return None
    found: dict[str, gs.Node] = {}
    stack = [start]
    while stack:
        node = stack.pop()
        if node.name in found:
            continue
        found[node.name] = node
        if len(found) > MAX_BRANCH_NODES:
            return None
        for tensor in node.inputs:
            if tensor is shortcut or is_empty_input(tensor) or constant_value(tensor) is not None:
                continue
            source = producer(tensor)
            if source is None:
                return None  # reads a graph input other than the shortcut
            stack.append(source)
    return found


def _exclusive(nodes: dict[str, gs.Node], output: gs.Tensor, add: gs.Node, graph_outputs: set[str]) -> bool:
    for node in nodes.values():
        for tensor in node.outputs:
            if tensor.name in graph_outputs:
                return False
            readers = {reader.name for reader in tensor.outputs}
            allowed = {add.name} if tensor is output else set(nodes)
            if not readers <= allowed:
                return False
    return True


def find_blocks(graph: gs.Graph) -> list[ResidualBlock]:
    """Every residual block of a prepared (shape-inferred) graph, in graph order."""
    outputs = {t.name for t in graph.outputs}
    blocks = []
    for add in graph.nodes:
        if add.op != "Add" or len(add.inputs) != 2 or add.outputs[0].name in outputs:
            continue
        a, b = add.inputs
        if static_shape(a) is None or static_shape(a) != static_shape(b):
            continue
        for shortcut, branch_out in ((a, b), (b, a)):
            nodes = _branch(shortcut, branch_out)
            if nodes and _exclusive(nodes, branch_out, add, outputs):
                ordered = tuple(n.name for n in graph.nodes if n.name in nodes)
                flops = sum(node_flops(n) for n in nodes.values())
                blocks.append(ResidualBlock(add.name, shortcut.name, branch_out.name, ordered, flops))
                break
    return blocks


@register_criterion(
    "sss", normalize="none", needs_images=True, kind="block", summary="remove weakest residual branches (SSS)"
)
def branch_strength(blocks: list[ResidualBlock], ctx: ScoreContext) -> np.ndarray:
    """rms(branch) / rms(shortcut) per block over the calibration feeds."""
    feeds = ctx.extras.get("feeds")
    if not feeds:
        raise PruneError("sss measures residual branches on images", hint="pass --images DIR")
    names = [n for b in blocks for n in (b.shortcut, b.branch_output)]
    sums = dict.fromkeys(names, 0.0)
    for outputs in Probe(ctx.graph, names).run(feeds):
        for name in names:
            sums[name] += float(np.square(outputs[name], dtype=np.float64).mean())
    return np.array([math.sqrt(sums[b.branch_output] / max(sums[b.shortcut], 1e-30)) for b in blocks])


def choose_blocks(
    blocks: list[ResidualBlock], scores: np.ndarray, total_flops: int, ratio: float
) -> tuple[list[ResidualBlock], int]:
    """Weakest branches first until ``ratio`` of ``total_flops`` is gone: (chosen, FLOPs removed).

    Raises:
        PruneError: even every branch together is not enough.
    """
    removed_nodes: set[str] = set()
    chosen: list[ResidualBlock] = []
    removed = 0
    for index in np.argsort(scores, kind="stable"):
        if removed >= ratio * total_flops:
            break
        block = blocks[int(index)]
        if block.add in removed_nodes:
            continue  # nested in a branch already removed
        fresh = set(block.nodes) - removed_nodes
        share = block.flops if fresh == set(block.nodes) else 0
        chosen.append(block)
        removed += share
        removed_nodes |= fresh | {block.add}
    if removed < ratio * total_flops:
        most = removed / max(total_flops, 1)
        raise PruneError(
            f"sss can remove at most {most:.1%} of the FLOPs here (all {len(blocks)} residual branches), "
            f"asked {ratio:.1%}",
            hint=f"use --ratio {math.floor(most * 100) / 100:.2f} or lower, or a channel method (l1, thinet, lasso)",
        )
    return chosen, removed


def remove_blocks(graph: gs.Graph, adds: list[str], shortcuts: dict[str, str]) -> gs.Graph:
    """Turn each ``Add(shortcut, branch)`` named in ``adds`` into ``shortcut`` (in place).

    The branch nodes become dead and are removed by the caller's ``cleanup()``.

    Raises:
        PruneError: an Add is missing, does not read its shortcut, or is a graph output.
    """
    nodes = {n.name: n for n in graph.nodes}
    outputs = {t.name for t in graph.outputs}
    alias: dict[str, str] = {}  # a removed Add's output -> what now stands for it
    for name in adds:
        add = nodes.get(name)
        wanted = shortcuts[name]
        while wanted in alias:
            wanted = alias[wanted]
        shortcut = next((t for t in (add.inputs if add else []) if t.name == wanted), None)
        if add is None or shortcut is None or add.outputs[0].name in outputs:
            raise PruneError(
                f"the plan removes the residual branch at Add {name!r}, which this model does not have",
                hint="make the plan from the same model",
            )
        out = add.outputs[0]
        replace_uses(out, shortcut)
        alias[out.name] = shortcut.name
        add.outputs.clear()
    return graph


def describe(block: ResidualBlock, nodes: dict[str, gs.Node]) -> str:
    """``'add' (Add): N nodes, X MFLOPs`` for reports."""
    return f"{node_label(nodes[block.add])}: {len(block.nodes)} node(s), {block.flops / 1e6:.1f} MFLOPs"


def block_plan_entries(
    blocks: list[ResidualBlock], scores: np.ndarray, chosen: list[ResidualBlock]
) -> list[dict[str, object]]:
    """The plan's ``blocks`` entries (JSON-able)."""
    picked = {b.add for b in chosen}
    return [
        {
            "add": b.add,
            "shortcut": b.shortcut,
            "branch_output": b.branch_output,
            "nodes": list(b.nodes),
            "flops": b.flops,
            "score": round(float(s), 6),
            "removed": b.add in picked,
        }
        for b, s in zip(blocks, scores)
    ]
