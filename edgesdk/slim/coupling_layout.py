"""Coupling rules for layout ops: Concat, Split, Slice, Reshape, Flatten, Transpose, ...

Channels survive a layout op only when the op keeps axis 1 as a contiguous block of whole
channels (Concat/Split/Slice along it, reshapes of the spatial axes, transposes that keep
it in place). Anything that folds the channel axis into another one (a detection head's
``Reshape [N, A*(5+C), H, W] -> [N, A, 5+C, H, W]``) pins the channels: they are protected.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, node_label, static_shape
from edgesdk.slim import _args
from edgesdk.slim.atoms import ChannelState, IntArray, channels, rank
from edgesdk.slim.coupling import coupling, opaque, pass_through


def _norm_axis(axis: int, r: int) -> int:
    return axis + r if axis < 0 else axis


@coupling("Concat")
def _concat(node: gs.Node, st: ChannelState) -> None:
    y = node.outputs[0]
    r, count = rank(y), channels(y)
    if r is None or count is None:
        opaque(node, st)
        return
    axis = _norm_axis(int(node.attrs["axis"]), r)
    parts: list[IntArray] = []
    for tensor in node.inputs:
        ids = st.get(tensor)
        if ids is None:
            value = constant_value(tensor)
            n = channels(tensor) if value is None else int(np.shape(value)[1])
            if n is None:
                opaque(node, st, f"{node_label(node)}: input {tensor.name!r} has an unknown channel count")
                return
            ids = st.new(n, f"opaque:{node.name}", pin=f"{node_label(node)}: constant input {tensor.name!r}")
        parts.append(ids)
    if axis == 1:
        joined = np.concatenate(parts)  # the consumer sees each input at its offset
        if len(joined) != count:
            opaque(node, st, f"{node_label(node)}: channel counts do not add up")
            return
        st.set(y, joined)
        return
    if any(len(p) != count for p in parts):
        opaque(node, st, f"{node_label(node)}: inputs differ in channel count")
        return
    for other in parts[1:]:
        st.unite(parts[0], other)  # concatenated along another axis: channel c of every input is one
    st.set(y, parts[0])


@coupling("Split")
def _split(node: gs.Node, st: ChannelState) -> None:
    x = node.inputs[0]
    ids, r = st.get(x), rank(x)
    if ids is None or r is None:
        opaque(node, st)
        return
    axis = _norm_axis(int(node.attrs.get("axis", 0)), r)
    if axis != 1:
        for out in node.outputs:
            pass_through(node, st, ids, out)
        return
    sizes = _args.split_sizes(node, len(ids))
    if sizes is None or sum(sizes) != len(ids) or len(sizes) != len(node.outputs):
        opaque(node, st, f"{node_label(node)}: split sizes are computed or do not match")
        return
    start = 0
    for out, size in zip(node.outputs, sizes):
        part = ids[start : start + size]
        st.set(out, part)
        st.segments.append(part)
        start += size


@coupling("Slice")
def _slice(node: gs.Node, st: ChannelState) -> None:
    x, y = node.inputs[0], node.outputs[0]
    ids, shape = st.get(x), static_shape(x)
    cuts = _args.slice_axes(node, shape) if shape is not None else None
    if ids is None or cuts is None:
        opaque(node, st, f"{node_label(node)}: slice arguments or input shape unknown")
        return
    on_channels = [c for c in cuts if c.axis == 1]
    if any(c.axis == 0 for c in cuts if (c.start, c.end, c.step) != (0, shape[0], 1)):  # type: ignore[index]
        opaque(node, st, f"{node_label(node)}: slices the batch axis")
        return
    if not on_channels:
        pass_through(node, st, ids, y)  # e.g. YOLOX/YOLOv5 Focus: spatial slices
        return
    cut = on_channels[0]
    if cut.step != 1:
        opaque(node, st, f"{node_label(node)}: strided slice of the channel axis (step {cut.step})")
        return
    part = ids[cut.start : cut.end]
    if channels(y) != len(part):
        opaque(node, st, f"{node_label(node)}: output channel count does not match the slice")
        return
    st.set(y, part)
    st.segments.append(part)


@coupling("Reshape")
def _reshape(node: gs.Node, st: ChannelState) -> None:
    x, y = node.inputs[0], node.outputs[0]
    ids, src, dst = st.get(x), static_shape(x), static_shape(y)
    keeps_channels = (
        ids is not None
        and src is not None
        and dst is not None
        and len(dst) >= 2
        and constant_value(node.inputs[1]) is not None
        and (src[0], src[1]) == (dst[0], dst[1])
    )
    if not keeps_channels:
        opaque(
            node,
            st,
            f"{node_label(node)}: folds the channel axis into other axes "
            "(e.g. a detection-head reshape), so these channels are protected",
        )
        return
    st.set(y, ids)  # type: ignore[arg-type]  # [N, C, rest] -> [N, C, rest']: whole channels stay whole


@coupling("Flatten")
def _flatten(node: gs.Node, st: ChannelState) -> None:
    x, y = node.inputs[0], node.outputs[0]
    src = static_shape(x)
    axis = int(node.attrs.get("axis", 1))
    if src is None or axis != 1 or int(np.prod(src[2:], dtype=np.int64)) != 1:
        opaque(node, st, f"{node_label(node)}: flattens spatial positions into the channel axis")
        return
    pass_through_rank(node, st, y)


def pass_through_rank(node: gs.Node, st: ChannelState, y: gs.Tensor) -> None:
    """``y`` carries the channels of input 0 (the rank may differ; axis 1 stays axis 1)."""
    ids = st.get(node.inputs[0])
    if ids is None or channels(y) != len(ids):
        opaque(node, st, f"{node_label(node)}: channel count not kept")
        return
    st.set(y, ids)


@coupling("Transpose")
def _transpose(node: gs.Node, st: ChannelState) -> None:
    r = rank(node.inputs[0])
    perm = list(node.attrs.get("perm", range((r or 0) - 1, -1, -1)))
    if r is None or perm[:2] != [0, 1]:
        opaque(
            node,
            st,
            f"{node_label(node)}: moves the channel axis (perm {perm}), so these channels are protected",
        )
        return
    pass_through(node, st, st.get(node.inputs[0]), node.outputs[0])


@coupling("Squeeze", "Unsqueeze")
def _squeeze(node: gs.Node, st: ChannelState) -> None:
    x, y = node.inputs[0], node.outputs[0]
    r = rank(y) if node.op == "Unsqueeze" else rank(x)
    which = _args.axes(node, 1, r) if r is not None else None
    if node.op == "Squeeze" and which == [] and static_shape(x) is not None:
        which = [i for i, d in enumerate(static_shape(x) or ()) if d == 1]
    if not which or min(which) < 2:
        opaque(node, st, f"{node_label(node)}: adds or removes an axis before the channels")
        return
    pass_through_rank(node, st, y)


@coupling(
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum",
)  # fmt: skip
def _reduce(node: gs.Node, st: ChannelState) -> None:
    r = rank(node.inputs[0])
    which = _args.axes(node, 1, r) if r is not None else None
    if not which or min(which) < 2:
        opaque(node, st, f"{node_label(node)}: reduces over the channel (or batch) axis")
        return
    pass_through_rank(node, st, node.outputs[0])


@coupling("Softmax", "LogSoftmax", "Hardmax")
def _softmax(node: gs.Node, st: ChannelState) -> None:
    r = rank(node.inputs[0])
    default = int(node.attrs.get("axis", -1 if st.opset >= 13 else 1))
    axis = _norm_axis(default, r) if r is not None else None
    if axis is None or axis < 2:  # opset < 13 flattens at `axis`: < 2 mixes channels too
        opaque(node, st, f"{node_label(node)}: normalises across the channel axis")
        return
    pass_through(node, st, st.get(node.inputs[0]), node.outputs[0])


@coupling("Shape", "Size")
def _shape(node: gs.Node, st: ChannelState) -> None:
    st.pin_tensor(node.inputs[0], f"{node_label(node)}: reads the channel count at run time")


@coupling("Constant")
def _constant(node: gs.Node, st: ChannelState) -> None:
    """A constant carries no tracked channels (element-wise handlers slice constants)."""
