"""Coupling rules: how each op type moves channel atoms from its inputs to its outputs.

One rule per ONNX ``op_type``, registered with :func:`coupling`; registering an op twice
raises. A rule reads the atoms of the node's inputs from the :class:`ChannelState`, writes
the atoms of its outputs, unites atoms that must share one decision, and pins atoms whose
channels must be kept. An op without a rule is *opaque*: every channel that reaches it is
pinned with a reason naming the op and the node, and its outputs get fresh pinned atoms.
That is the safety net: a group the slimmer does not fully understand is never pruned.

This module holds the registry and the rules for compute and element-wise ops; layout
ops (Concat, Split, Slice, Reshape, ...) are in :mod:`edgesdk.slim.coupling_layout`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import EdgeSdkInternalError
from edgesdk.graph._util import constant_value, is_empty_input, node_label
from edgesdk.slim.atoms import ChannelState, IntArray, channels, rank

Rule = Callable[[gs.Node, ChannelState], None]

_RULES: dict[str, Rule] = {}


def coupling(*ops: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the coupling rule of ``ops``.

    Raises:
        EdgeSdkInternalError: an op already has a rule.
    """

    def register(fn: Rule) -> Rule:
        for op in ops:
            if op in _RULES:
                raise EdgeSdkInternalError(f"coupling rule for {op} registered twice")
            _RULES[op] = fn
        return fn

    return register


def rule_for(op: str) -> Rule:
    """The rule of ``op`` (the opaque rule when none is registered)."""
    _load()
    return _RULES.get(op, opaque)


def known_ops() -> list[str]:
    """Op types with a coupling rule."""
    _load()
    return sorted(_RULES)


def _load() -> None:
    import edgesdk.slim.coupling_layout  # noqa: F401  (registers the layout rules)


# --------------------------------------------------------------------------- helpers


def opaque(node: gs.Node, st: ChannelState, reason: str | None = None) -> None:
    """Pin every channel reaching ``node``; its outputs get fresh pinned channels."""
    why = reason or f"{node_label(node)}: no channel rule for {node.op}, so its channels are kept"
    for tensor in node.inputs:
        st.pin_tensor(tensor, why)
    for tensor in node.outputs:
        count = channels(tensor)
        if count is not None:
            st.fresh(tensor, count, f"opaque:{node.name}", pin=why)


def pass_through(node: gs.Node, st: ChannelState, ids: IntArray | None, out: gs.Tensor) -> None:
    """``out`` carries ``ids`` when its rank and channel count allow it, else ``node`` is opaque."""
    src = node.inputs[0]
    if ids is None or rank(out) != rank(src) or channels(out) != len(ids):
        opaque(node, st, f"{node_label(node)}: its channel count or rank is not known or not kept")
        return
    st.set(out, ids)


def const_inputs(node: gs.Node, start: int) -> bool:
    """Whether every present input from ``start`` on has a value known at export time."""
    return all(is_empty_input(t) or constant_value(t) is not None for t in node.inputs[start:])


# --------------------------------------------------------------------------- compute ops


@coupling("Conv")
def _conv(node: gs.Node, st: ChannelState) -> None:
    x, y = node.inputs[0], node.outputs[0]
    weight = constant_value(node.inputs[1]) if len(node.inputs) > 1 else None
    cout = channels(y)
    if weight is None or cout is None or not const_inputs(node, 2):
        opaque(node, st, f"{node_label(node)}: weights are computed, not constants")
        return
    group = int(node.attrs.get("group", 1))
    if group == 1:
        st.fresh(y, cout, node.name)
        return
    ids = st.get(x)
    if ids is not None and group == len(ids) and weight.shape[1] == 1 and cout % group == 0:
        st.set(y, np.repeat(ids, cout // group))  # depthwise: output c*m..c*m+m-1 come from input c
        return
    opaque(node, st, f"{node_label(node)}: grouped convolution (group={group}) is not pruned")


@coupling("Gemm")
def _gemm(node: gs.Node, st: ChannelState) -> None:
    a, y = node.inputs[0], node.outputs[0]
    ok = (
        len(node.inputs) > 1
        and constant_value(node.inputs[1]) is not None
        and const_inputs(node, 2)
        and not int(node.attrs.get("transA", 0))
        and rank(a) == 2
    )
    cout = channels(y)
    if not ok or cout is None:
        opaque(node, st, f"{node_label(node)}: only Gemm with constant B (and C) and no transA is pruned")
        return
    st.fresh(y, cout, node.name)


# --------------------------------------------------------------------------- per-channel ops

UNARY = (
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish",
    "Elu", "Selu", "Celu", "Gelu", "Erf", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Identity",
    "Dropout", "Cast", "Floor", "Ceil", "Round", "Sign", "Clip", "ThresholdedRelu",
    "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
)  # fmt: skip
"""Ops whose output channel ``c`` depends only on input channel ``c`` (and no per-channel parameter)."""


@coupling(*UNARY)
def _unary(node: gs.Node, st: ChannelState) -> None:
    if node.op == "Clip" and not const_inputs(node, 1):
        opaque(node, st, f"{node_label(node)}: min/max are computed")
        return
    pass_through(node, st, st.get(node.inputs[0]), node.outputs[0])
    for extra in node.outputs[1:]:  # MaxPool indices, Dropout mask
        st.pin_tensor(extra, f"{node_label(node)}: second output")


@coupling("BatchNormalization", "InstanceNormalization")
def _norm(node: gs.Node, st: ChannelState) -> None:
    if not const_inputs(node, 1) or len(node.outputs) > 1:
        opaque(node, st, f"{node_label(node)}: training-mode or computed parameters")
        return
    pass_through(node, st, st.get(node.inputs[0]), node.outputs[0])


@coupling("Resize", "Upsample")
def _resize(node: gs.Node, st: ChannelState) -> None:
    ids = st.get(node.inputs[0])
    if not const_inputs(node, 1):
        opaque(node, st, f"{node_label(node)}: scales/sizes are computed")
        return
    scales = _nonempty_value(node, 2 if node.op == "Resize" and len(node.inputs) > 2 else 1)
    if node.op == "Upsample" and "scales" in node.attrs:
        scales = np.asarray(node.attrs["scales"])
    if scales is not None and scales.size > 1 and float(scales[1]) != 1.0:
        opaque(node, st, f"{node_label(node)}: it scales the channel axis")
        return
    pass_through(node, st, ids, node.outputs[0])


@coupling("Pad")
def _pad(node: gs.Node, st: ChannelState) -> None:
    ids, r = st.get(node.inputs[0]), rank(node.inputs[0])
    pads = _nonempty_value(node, 1) if len(node.inputs) > 1 else np.asarray(node.attrs.get("pads", []))
    axes = _nonempty_value(node, 3) if len(node.inputs) > 3 else None
    ok = const_inputs(node, 1) and pads is not None and r is not None and axes is None
    if not ok or pads is None or r is None or len(pads) != 2 * r or pads[1] != 0 or pads[r + 1] != 0:
        opaque(node, st, f"{node_label(node)}: pads are computed or pad the channel axis")
        return
    pass_through(node, st, ids, node.outputs[0])


def _nonempty_value(node: gs.Node, index: int) -> np.ndarray | None:
    if index >= len(node.inputs) or is_empty_input(node.inputs[index]):
        return None
    value = constant_value(node.inputs[index])
    return None if value is None else np.asarray(value)


# --------------------------------------------------------------------------- element-wise

BINARY = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu")
"""Broadcasting element-wise ops: tensors with the full channel axis are coupled channel by channel."""


def _channel_dim(shape: tuple[int, ...], out_rank: int) -> int | None:
    """The size of the input dim aligned (numpy broadcasting) with the output's axis 1, or None."""
    axis = len(shape) - (out_rank - 1)
    return None if axis < 0 else int(shape[axis])


@coupling(*BINARY)
def _elementwise(node: gs.Node, st: ChannelState) -> None:
    y = node.outputs[0]
    out_rank, count = rank(y), channels(y)
    if out_rank is None or count is None:
        opaque(node, st, f"{node_label(node)}: output rank or channel count unknown")
        return
    coupled: list[IntArray] = []
    for tensor in node.inputs:
        value = constant_value(tensor)
        shape = np.shape(value) if value is not None else tensor.shape
        if shape is None or any(not isinstance(d, (int, np.integer)) for d in shape):
            opaque(node, st, f"{node_label(node)}: input {tensor.name!r} has an unknown shape")
            return
        dim = _channel_dim(tuple(int(d) for d in shape), out_rank)
        if dim is None or (dim == 1 and count != 1) or value is not None:
            continue  # broadcast over the channels, or a constant (the handler slices it)
        ids = st.get(tensor)
        if ids is None or len(shape) != out_rank or len(ids) != count:
            opaque(
                node, st, f"{node_label(node)}: input {tensor.name!r} spans the channels but is not tracked"
            )
            return
        coupled.append(ids)
    if not coupled:
        st.fresh(y, count, f"opaque:{node.name}", pin=f"{node_label(node)}: channels come from constants")
        return
    for other in coupled[1:]:
        st.unite(coupled[0], other)  # a residual Add: one keep/remove decision per channel index
    st.set(y, coupled[0])
