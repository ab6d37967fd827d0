"""Q/DQ (explicit quantization) models: QuantizeLinear/DequantizeLinear where TensorRT fuses them.

A graph pass over ``gs.Graph`` in two steps: :func:`plan_qdq` decides *where* (data, goes
into summary.json) and :func:`apply_qdq` inserts the nodes. Placement follows TensorRT's
Q/DQ guidance (Q/DQ on the inputs of the layers that run in int8):

- **Conv / ConvTranspose / Gemm / MatMul**: the activation input gets a per-tensor Q/DQ with
  ``scale = threshold / 127``; a constant weight gets a per-channel Q/DQ (symmetric,
  ``scale_c = max|W_c| / 127``; axis 0 for Conv and ``transB`` Gemm, 1 for ConvTranspose,
  plain Gemm and 2-D MatMul weights). Biases stay float.
- **Residual Add** (two computed inputs of the same shape): Q/DQ on each input that is not
  the direct output of a Conv/Gemm (that branch fuses into the convolution as its
  epilogue); when both are, on the second.
- **Kept in float**: nodes named in the recipe's ``quantize.keep_fp`` (by node name; an
  unnamed node by the name of its first output), and the *decoder
  tail*: every node from which no Conv/Gemm/MatMul-with-weights is reachable downstream
  (final Sigmoid, box decoding, concat of heads, Softmax ...). Their inputs get no Q/DQ.
- A tensor without a usable threshold (flagged broken by the summary) stays float.

Symmetric int8: zero point 0 (int8), values saturate to [-128, 127] (ONNX semantics).
Requires default-domain opset >= 13 (per-channel ``axis``). Never renames existing tensors or
graph outputs; one Q/DQ pair per quantised activation tensor, shared by its consumers.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import CalibrationError, GraphError

__all__ = ["MIN_OPSET", "QdqPlan", "apply_qdq", "decoder_tail", "is_kept", "node_key", "plan_qdq"]

MIN_OPSET = 13
INT8_MAX = 127

_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_CONV_LIKE = ("Conv", "ConvTranspose", "Gemm")


@dataclass
class QdqPlan:
    """Where Q/DQ nodes go.

    Attributes:
        activations: tensor name -> (scale, [(node, input index)]) for per-tensor activation Q/DQ.
        weights: [(node, input index, axis or None for per-tensor)] for weight Q/DQ.
        kept_float: node label -> why its inputs get no Q/DQ.
    """

    activations: dict[str, tuple[float, list[tuple[gs.Node, int]]]] = field(default_factory=dict)
    weights: list[tuple[gs.Node, int, int | None]] = field(default_factory=list)
    kept_float: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data: quantised activations with scales, weights with axes, float nodes with reasons."""
        return {
            "activations": {
                name: {"scale": scale, "consumers": sorted({_label(node) for node, _ in sites})}
                for name, (scale, sites) in self.activations.items()
            },
            "weights": [
                {"node": _label(node), "input": index, "axis": axis} for node, index, axis in self.weights
            ],
            "kept_float": dict(self.kept_float),
        }


def node_key(node: gs.Node) -> str:
    """How ``keep_fp`` names a node: its name, or for an unnamed node its first output's name."""
    return node.name or (node.outputs[0].name if node.outputs else "")


def is_kept(node: gs.Node, keep_fp: Collection[str]) -> bool:
    """Whether ``keep_fp`` names ``node`` (by name, or by first output for unnamed nodes)."""
    return bool(keep_fp) and (node.name in keep_fp or node_key(node) in keep_fp)


def _label(node: gs.Node) -> str:
    return node_key(node) or node.op


def _consumers(graph: gs.Graph) -> dict[int, list[gs.Node]]:
    """id(node) -> the nodes consuming any of its outputs."""
    return {id(node): [c for t in node.outputs for c in t.outputs] for node in graph.nodes}


def _has_weight(node: gs.Node) -> bool:
    return node.op in _WEIGHTED and len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant)


def decoder_tail(graph: gs.Graph) -> set[int]:
    """ids of the nodes from which no Conv/Gemm/MatMul with constant weights is reachable.

    Requires a toposorted graph (``graph.toposort()``); does not modify it.
    """
    consumers = _consumers(graph)
    reaches: dict[int, bool] = {}
    for node in reversed(graph.nodes):
        reaches[id(node)] = any(_has_weight(c) or reaches.get(id(c), False) for c in consumers[id(node)])
    return {id(node) for node in graph.nodes if not reaches[id(node)] and not _has_weight(node)}


def _weight_axis(node: gs.Node, weight: np.ndarray) -> int | None:
    if node.op == "Conv":
        return 0
    if node.op == "ConvTranspose":
        return 1 if int(node.attrs.get("group", 1)) == 1 else None
    if node.op == "Gemm":
        return 0 if int(node.attrs.get("transB", 0)) else 1
    return 1 if weight.ndim == 2 else None  # MatMul: (K, N), N output channels


def _is_computed(tensor: gs.Tensor) -> bool:
    if isinstance(tensor, gs.Constant) or not tensor.name:
        return False
    producer = tensor.inputs[0] if tensor.inputs else None
    return producer is None or producer.op != "Constant"


def _residual_inputs(node: gs.Node) -> list[int]:
    """Input indices of a residual Add that get Q/DQ (see the module docstring)."""
    if len(node.inputs) != 2 or not all(_is_computed(t) for t in node.inputs):
        return []
    a, b = node.inputs
    if a.shape is not None and b.shape is not None and list(a.shape) != list(b.shape):
        return []
    from_conv = [bool(t.inputs) and t.inputs[0].op in _CONV_LIKE for t in node.inputs]
    chosen = [i for i in (0, 1) if not from_conv[i]]
    return chosen or [1]


def _usable(threshold: float | None) -> bool:
    return threshold is not None and bool(np.isfinite(threshold)) and threshold > 0


def _check_keep(graph: gs.Graph, keep_fp: Collection[str]) -> None:
    names = [n.name for n in graph.nodes if n.name] + [node_key(n) for n in graph.nodes if not n.name]
    unknown = [k for k in keep_fp if k not in set(names)]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=3)
        raise CalibrationError(
            f"quantize.keep_fp names node(s) not in the model: {', '.join(map(repr, unknown))}",
            hint=f"did you mean {', '.join(close)}?" if close else "`edgesdk inspect MODEL` lists node names",
        )


def _sites(node: gs.Node) -> list[int]:
    """Input indices of ``node`` whose activations get Q/DQ."""
    if node.op in _WEIGHTED:
        indices = [0]
        if node.op == "MatMul" and len(node.inputs) > 1 and _is_computed(node.inputs[1]):
            indices.append(1)
        return indices
    if node.op == "Add":
        return _residual_inputs(node)
    return []


def plan_qdq(graph: gs.Graph, thresholds: Mapping[str, float], *, keep_fp: Collection[str] = ()) -> QdqPlan:
    """Decide where Q/DQ nodes go (see the module docstring). Does not modify ``graph``.

    Args:
        graph: the model (toposorted in place if it is not).
        thresholds: activation tensor name -> saturation threshold (> 0, finite).
        keep_fp: node names kept in float (the recipe's ``quantize.keep_fp``).

    Raises:
        CalibrationError: a ``keep_fp`` name is not a node of the graph.
    """
    _check_keep(graph, keep_fp)
    graph.toposort()
    tail = decoder_tail(graph)
    plan = QdqPlan()
    for node in graph.nodes:
        sites = _sites(node)
        if not sites:
            continue
        if is_kept(node, keep_fp) or id(node) in tail:
            plan.kept_float[_label(node)] = "quantize.keep_fp" if is_kept(node, keep_fp) else "decoder tail"
            continue
        missing = [node.inputs[i].name for i in sites if not _usable(thresholds.get(node.inputs[i].name))]
        if missing:  # a layer runs in int8 only with every input quantised
            plan.kept_float[_label(node)] = f"no usable threshold for input {missing[0]!r}"
            continue
        for index in sites:
            tensor = node.inputs[index]
            scale = float(np.float32(thresholds[tensor.name] / INT8_MAX))
            plan.activations.setdefault(tensor.name, (scale, []))[1].append((node, index))
        if _has_weight(node):
            plan.weights.append((node, 1, _weight_axis(node, np.asarray(node.inputs[1].values))))
    return plan


def _qdq_pair(
    name: str, source: gs.Tensor, scale: np.ndarray, axis: int | None, dtype: Any
) -> tuple[list[gs.Node], gs.Variable]:
    zero = gs.Constant(f"{name}_zero_point", np.zeros(scale.shape, np.int8))
    scale_const = gs.Constant(f"{name}_scale", scale.astype(np.float32))
    attrs = {} if axis is None else {"axis": axis}
    quantized = gs.Variable(f"{name}_quantized", dtype=np.int8, shape=source.shape)
    restored = gs.Variable(f"{name}_dequantized", dtype=dtype, shape=source.shape)
    q = gs.Node(
        "QuantizeLinear", f"{name}_QuantizeLinear", dict(attrs), [source, scale_const, zero], [quantized]
    )
    dq = gs.Node(
        "DequantizeLinear",
        f"{name}_DequantizeLinear",
        dict(attrs),
        [quantized, scale_const, zero],
        [restored],
    )
    return [q, dq], restored


def _weight_scale(weight: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is None:
        amax = np.array(np.abs(weight).max(), np.float64)
    else:
        amax = np.abs(np.moveaxis(weight, axis, 0)).reshape(weight.shape[axis], -1).max(axis=1)
    scale = amax / INT8_MAX
    return np.where(scale > 0, scale, 1.0).astype(np.float32)  # an all-zero channel: any scale works


def apply_qdq(graph: gs.Graph, plan: QdqPlan) -> gs.Graph:
    """Insert the planned Q/DQ nodes into ``graph`` (in place; returns it, toposorted).

    Raises:
        GraphError: the graph's opset is below 13 (convert it first).
    """
    if int(graph.opset) < MIN_OPSET:
        raise GraphError(
            f"Q/DQ with per-channel weight scales needs opset >= {MIN_OPSET}; the graph has {graph.opset}",
            hint="convert the graph first (edgesdk.graph.io.convert_opset)",
        )
    for name, (scale, sites) in plan.activations.items():
        source = sites[0][0].inputs[sites[0][1]]
        nodes, restored = _qdq_pair(
            name, source, np.array(scale, np.float32), None, source.dtype or np.float32
        )
        graph.nodes.extend(nodes)
        for node, index in sites:
            node.inputs[index] = restored
    done: dict[tuple[str, int | None], gs.Variable] = {}
    for node, index, axis in plan.weights:
        weight = node.inputs[index]
        key = (weight.name, axis)
        if key not in done:
            values = np.asarray(weight.values)
            nodes, restored = _qdq_pair(weight.name, weight, _weight_scale(values, axis), axis, values.dtype)
            graph.nodes.extend(nodes)
            done[key] = restored
        node.inputs[index] = done[key]
    return graph.cleanup().toposort()
