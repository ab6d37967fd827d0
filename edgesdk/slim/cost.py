"""FLOPs as a function of which channels are kept, for the planner's search.

The model counts exactly what :func:`edgesdk.graph.inspect.count_flops` counts as
``flops`` (2 x MACs of Conv, ConvTranspose, Gemm, MatMul), with each Conv/Gemm's input
and output channel counts read from a global keep vector (see
:meth:`edgesdk.slim.groups.ChannelAnalysis.keep_vector`). Pure numpy; evaluating it takes
microseconds per layer, so the planner can bisect on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, static_shape
from edgesdk.graph.inspect import count_flops
from edgesdk.slim.groups import ChannelAnalysis


@dataclass(frozen=True)
class _Term:
    """``coef * out_channels * in_factor`` FLOPs; channel counts come from the keep vector."""

    coef: int
    out_ids: np.ndarray | None
    out_fixed: int
    in_ids: np.ndarray | None
    in_fixed: int


@dataclass
class CostModel:
    """FLOPs of a graph as a function of a keep vector.

    Attributes:
        terms: one per Conv/Gemm whose channels can change.
        constant: FLOPs of every other counted node (they do not change).
    """

    terms: list[_Term]
    constant: int

    def flops(self, keep: np.ndarray | None = None) -> int:
        """FLOPs with the channels flagged in ``keep`` (None: everything kept)."""
        total = self.constant
        for t in self.terms:
            out = t.out_fixed if t.out_ids is None or keep is None else int(keep[t.out_ids].sum())
            inp = t.in_fixed if t.in_ids is None or keep is None else int(keep[t.in_ids].sum())
            total += t.coef * out * inp
        return total


def _conv_term(node: gs.Node, analysis: ChannelAnalysis) -> _Term | None:
    y, x = node.outputs[0], node.inputs[0]
    out, weight = static_shape(y), constant_value(node.inputs[1])
    if out is None or weight is None:
        return None
    weight = np.asarray(weight)
    coef = 2 * out[0] * math.prod(out[2:]) * math.prod(weight.shape[2:])
    out_ids = analysis.tensor_classes.get(y.name)
    if int(node.attrs.get("group", 1)) == 1:
        in_ids = analysis.tensor_classes.get(x.name)
        return _Term(coef, out_ids, out[1], in_ids, weight.shape[1])
    return _Term(coef, out_ids, out[1], None, weight.shape[1])  # grouped: in/group stays


def _gemm_term(node: gs.Node, analysis: ChannelAnalysis) -> _Term | None:
    y, a = node.outputs[0], node.inputs[0]
    out, a_shape = static_shape(y), static_shape(a)
    if out is None or a_shape is None or len(out) != 2 or int(node.attrs.get("transA", 0)):
        return None
    return _Term(
        2 * out[0],
        analysis.tensor_classes.get(y.name),
        out[1],
        analysis.tensor_classes.get(a.name),
        a_shape[1],
    )


def cost_model(graph: gs.Graph, analysis: ChannelAnalysis) -> CostModel:
    """The FLOPs model of a prepared, shape-inferred graph."""
    terms: list[_Term] = []
    counted = 0
    for node in graph.nodes:
        term = None
        if node.op == "Conv":
            term = _conv_term(node, analysis)
        elif node.op == "Gemm":
            term = _gemm_term(node, analysis)
        if term is not None:
            terms.append(term)
            counted += term.coef * term.out_fixed * term.in_fixed
    total, _other, _uncounted = count_flops(graph)
    return CostModel(terms, total - counted)
