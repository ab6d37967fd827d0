"""How to cut one op type: slicing handlers, one per ONNX ``op_type``.

A handler gets a node and the keep masks of its inputs and outputs (a bool per channel of
axis 1; None where the tensor loses nothing) and rewrites the node's constants and
attributes so that it computes exactly the kept channels: Conv weights and bias, the
``group`` of a depthwise Conv, BatchNormalization parameters, per-channel constants of
element-wise ops, Split sizes, Slice bounds, Reshape/Resize target shapes. Activation
shapes follow by themselves.

Registered with :func:`handler`; registering an op twice raises. The apply step raises
:class:`~edgesdk.errors.PruneError` for a node that loses channels and has no handler:
an op is never skipped silently. Handlers never mutate a constant in place (it may be
shared): they put a new ``gs.Constant`` into the node's input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import EdgeSdkInternalError, PruneError
from edgesdk.graph._util import constant_value, is_empty_input, node_label, static_shape
from edgesdk.slim import _args
from edgesdk.slim.coupling import BINARY, UNARY


@dataclass(frozen=True)
class NodeMasks:
    """Keep masks of a node's inputs and outputs (None: the tensor keeps every channel), and the opset."""

    inputs: list[np.ndarray | None]
    outputs: list[np.ndarray | None]
    opset: int = 13

    @property
    def inp(self) -> np.ndarray | None:
        """Mask of input 0."""
        return self.inputs[0] if self.inputs else None

    @property
    def out(self) -> np.ndarray | None:
        """Mask of output 0."""
        return self.outputs[0] if self.outputs else None


Handler = Callable[[gs.Node, NodeMasks], None]

_HANDLERS: dict[str, Handler] = {}


def handler(*ops: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the slicing handler of ``ops``.

    Raises:
        EdgeSdkInternalError: an op already has a handler.
    """

    def register(fn: Handler) -> Handler:
        for op in ops:
            if op in _HANDLERS:
                raise EdgeSdkInternalError(f"slicing handler for {op} registered twice")
            _HANDLERS[op] = fn
        return fn

    return register


def handler_for(node: gs.Node) -> Handler:
    """The handler of ``node``'s op.

    Raises:
        PruneError: there is none (names the op and the node).
    """
    found = _HANDLERS.get(node.op)
    if found is None:
        raise PruneError(
            f"cannot prune channels through {node_label(node)}: no slicing handler for {node.op}",
            hint="this is a bug in the coupling rules (the group should have been unprunable); "
            "please report it with the model",
        )
    return found


def handled_ops() -> list[str]:
    """Op types with a slicing handler."""
    return sorted(_HANDLERS)


# --------------------------------------------------------------------------- helpers


def set_const(node: gs.Node, index: int, values: np.ndarray) -> None:
    """Replace input ``index`` of ``node`` by a new constant holding ``values``."""
    old = node.inputs[index]
    shared = len(old.outputs) > 1 or not isinstance(old, gs.Constant)
    name = f"{old.name}__{node.name}" if shared else old.name
    if not shared:
        old.name = f"{old.name}__unpruned"  # the new constant takes the name; the old one is dropped
    node.inputs[index] = gs.Constant(name, np.ascontiguousarray(values))


def _const(node: gs.Node, index: int) -> np.ndarray:
    value = constant_value(node.inputs[index])
    if value is None:
        raise EdgeSdkInternalError(f"{node_label(node)}: input {index} is not a constant")
    return np.asarray(value)


def _count(mask: np.ndarray) -> int:
    return int(mask.sum())


# --------------------------------------------------------------------------- compute ops


@handler("Conv")
def _conv(node: gs.Node, masks: NodeMasks) -> None:
    weight = _const(node, 1)
    bias_at = 2 if len(node.inputs) > 2 and not is_empty_input(node.inputs[2]) else None
    group = int(node.attrs.get("group", 1))
    if group == 1:
        if masks.out is not None:
            weight = weight[masks.out]
        if masks.inp is not None:
            weight = weight[:, masks.inp]
    elif masks.inp is not None:  # depthwise: output channels follow the input channels
        if masks.out is None or group != len(masks.inp):
            raise EdgeSdkInternalError(f"{node_label(node)}: depthwise masks disagree")
        weight = weight[masks.out]
        node.attrs["group"] = _count(masks.inp)
    set_const(node, 1, weight)
    if bias_at is not None and masks.out is not None:
        set_const(node, bias_at, _const(node, bias_at)[masks.out])


@handler("Gemm")
def _gemm(node: gs.Node, masks: NodeMasks) -> None:
    b = _const(node, 1)
    trans_b = int(node.attrs.get("transB", 0))
    if masks.inp is not None:
        b = b[:, masks.inp] if trans_b else b[masks.inp]
    if masks.out is not None:
        b = b[masks.out] if trans_b else b[:, masks.out]
    set_const(node, 1, b)
    if masks.out is not None and len(node.inputs) > 2 and not is_empty_input(node.inputs[2]):
        c = _const(node, 2)
        if c.ndim and c.shape[-1] == len(masks.out):
            set_const(node, 2, c[..., masks.out])


@handler("BatchNormalization", "InstanceNormalization")
def _norm(node: gs.Node, masks: NodeMasks) -> None:
    mask = masks.out
    if mask is None:
        return
    for index in range(1, len(node.inputs)):
        set_const(node, index, _const(node, index)[mask])


@handler(*BINARY)
def _elementwise(node: gs.Node, masks: NodeMasks) -> None:
    """Slice the per-channel constants (a [1, C, 1, 1] scale, a PRelu slope)."""
    mask, y = masks.out, node.outputs[0]
    if mask is None or y.shape is None:
        return
    out_rank = len(y.shape)
    for index, tensor in enumerate(node.inputs):
        value = constant_value(tensor)
        if value is None:
            continue
        value = np.asarray(value)
        axis = value.ndim - (out_rank - 1)
        if axis >= 0 and value.shape[axis] == len(mask) and len(mask) > 1:
            set_const(node, index, np.compress(mask, value, axis=axis))


# --------------------------------------------------------------------------- layout ops


@handler(
    *UNARY, "Concat", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Pad", "Upsample",
    "Softmax", "LogSoftmax", "Hardmax", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum",
    "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum",
)  # fmt: skip
def _nothing(node: gs.Node, masks: NodeMasks) -> None:
    """Nothing to rewrite: the output shape follows the inputs."""


@handler("Split")
def _split(node: gs.Node, masks: NodeMasks) -> None:
    rank = len(node.inputs[0].shape or ())
    axis = int(node.attrs.get("axis", 0))
    if masks.inp is None or (axis + rank if axis < 0 else axis) != 1:
        return  # nothing removed, or a split along another axis (outputs follow by themselves)
    old = _args.split_sizes(node, len(masks.inp))
    if old is None:
        raise EdgeSdkInternalError(f"{node_label(node)}: split sizes became unknown")
    kept = [_count(m) if m is not None else size for m, size in zip(masks.outputs, old)]
    node.attrs.pop("num_outputs", None)
    if masks.opset < 13:
        node.attrs["split"] = kept
    elif _args.has_input(node, 1):
        set_const(node, 1, np.asarray(kept, dtype=np.int64))
    else:
        node.inputs.append(gs.Constant(f"{node.name}__split", np.asarray(kept, dtype=np.int64)))


@handler("Slice")
def _slice(node: gs.Node, masks: NodeMasks) -> None:
    mask, shape = masks.inp, static_shape(node.inputs[0])
    raw = _args.slice_raw(node)
    cuts = _args.slice_axes(node, shape) if shape is not None else None
    if mask is None:
        return
    if raw is None or cuts is None:
        raise EdgeSdkInternalError(f"{node_label(node)}: slice arguments became unknown")
    starts, ends = list(raw[0]), list(raw[1])
    for i, cut in enumerate(cuts):
        if cut.axis == 1:  # only the channel bounds move; the others stay as written
            starts[i] = _count(mask[: cut.start])
            ends[i] = starts[i] + _count(mask[cut.start : cut.end])
    if "starts" in node.attrs:
        node.attrs["starts"], node.attrs["ends"] = starts, ends
        return
    set_const(node, 1, np.asarray(starts, dtype=np.int64))
    set_const(node, 2, np.asarray(ends, dtype=np.int64))


@handler("Reshape")
def _reshape(node: gs.Node, masks: NodeMasks) -> None:
    if masks.out is None:
        return
    shape = _const(node, 1).astype(np.int64).copy()
    if shape[1] > 0:
        shape[1] = _count(masks.out)
        set_const(node, 1, shape)


@handler("Resize")
def _resize(node: gs.Node, masks: NodeMasks) -> None:
    sizes = _args.input_value(node, 3)
    if masks.out is not None and sizes is not None:
        sizes = sizes.astype(np.int64).copy()
        sizes[1] = _count(masks.out)
        set_const(node, 3, sizes)
