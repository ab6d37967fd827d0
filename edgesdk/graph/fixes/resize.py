"""Resize/Upsample normalisation: constant ``scales`` instead of computed ``sizes``; no Upsample."""

from __future__ import annotations

import logging

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import GraphError
from edgesdk.graph._util import constant_value, is_empty_input, node_label, set_io, static_shape, unique_name
from edgesdk.graph.io import convert_opset
from edgesdk.graph.registry import FixContext, register_fix

log = logging.getLogger(__name__)

# Upsample (opset 7-9) maps input pixel x_out to floor(x_out / scale): Resize's "asymmetric"
# coordinate transform with nearest_mode "floor".
_UPSAMPLE_ATTRS = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}


def _empty_roi(graph: gs.Graph, node: gs.Node) -> gs.Constant:
    return gs.Constant(unique_name(graph, f"{node.name or 'resize'}_roi"), np.zeros((0,), np.float32))


def _sizes_to_scales(graph: gs.Graph, node: gs.Node) -> bool:
    """Replace a constant ``sizes`` input by the equivalent constant ``scales``; True if done."""
    if len(node.inputs) < 4 or is_empty_input(node.inputs[3]):
        return False
    sizes = constant_value(node.inputs[3])
    in_shape = static_shape(node.inputs[0])
    if sizes is None or in_shape is None or "axes" in node.attrs:
        log.info(
            "normalize-resize: kept %s (sizes %s, input shape %s); run fold-constants first",
            node_label(node),
            "computed" if sizes is None else "given per axes",
            node.inputs[0].shape,
        )
        return False
    sizes = sizes.astype(np.int64).reshape(-1)
    if len(sizes) != len(in_shape) or any(d == 0 for d in in_shape):
        raise GraphError(
            f"normalize-resize: {node_label(node)} has sizes {sizes.tolist()} for input {in_shape}"
        )
    scales = (sizes / np.asarray(in_shape, np.float64)).astype(np.float32)
    # ONNX: out = floor(in * scale). Only rewrite when that gives the same sizes back, whether
    # a runtime multiplies in float32 or in double.
    dims = np.asarray(in_shape)
    again32 = np.floor(dims.astype(np.float32) * scales).astype(np.int64)
    again64 = np.floor(dims.astype(np.float64) * scales.astype(np.float64)).astype(np.int64)
    if not (np.array_equal(again32, sizes) and np.array_equal(again64, sizes)):
        log.info(
            "normalize-resize: kept %s: sizes %s are not reachable by a float scale", node_label(node), sizes
        )
        return False
    roi = node.inputs[1]
    if is_empty_input(roi) and int(graph.opset) < 13:
        roi = _empty_roi(graph, node)
    const = gs.Constant(unique_name(graph, f"{node.name or 'resize'}_scales"), scales)
    set_io(node.inputs, [node.inputs[0], roi, const])
    return True


def _upsample_to_resize(graph: gs.Graph, node: gs.Node) -> None:
    """Rewrite one Upsample (opset >= 10 graph) as the equivalent Resize, in place."""
    mode = node.attrs.get("mode", "nearest")
    if isinstance(mode, bytes):
        mode = mode.decode()
    if len(node.inputs) < 2:
        raise GraphError(f"normalize-resize: {node_label(node)} has no scales input")
    node.op = "Resize"
    if int(graph.opset) >= 11:
        set_io(node.inputs, [node.inputs[0], _empty_roi(graph, node), node.inputs[1]])
        node.attrs = {"mode": mode, **_UPSAMPLE_ATTRS}
    else:  # Resize-10 has Upsample's semantics and inputs (X, scales)
        node.attrs = {"mode": mode}


def _convert_old_upsample(graph: gs.Graph) -> gs.Graph:
    """Opset < 10: convert the graph to opset 11 (ONNX's converter turns Upsample into Resize)."""
    produced = {n.outputs[0].name for n in graph.nodes if n.op == "Upsample" and n.outputs}
    log.info(
        "normalize-resize: converting opset %d graph to 11 to replace %d Upsample", graph.opset, len(produced)
    )
    new = convert_opset(graph, 11)
    for node in new.nodes:
        if node.op == "Resize" and node.outputs and node.outputs[0].name in produced:
            node.attrs.update(_UPSAMPLE_ATTRS)
    return new


@register_fix("normalize-resize")
def normalize_resize(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Give every Resize constant ``scales``; replace Upsample by Resize.

    A Resize whose ``sizes`` is a constant (e.g. yolov5's Shape→Slice→Concat after
    ``fold-constants``) gets the equivalent constant ``scales`` instead, when
    ``floor(in * scale)`` reproduces the sizes exactly. Upsample becomes Resize with
    Upsample's coordinate mapping (asymmetric, floor); an opset < 10 graph is first converted
    to opset 11 with ONNX's version converter (then this returns a new Graph object).

    Invariants: never renames tensors or graph inputs/outputs; output values are unchanged;
    a Resize whose sizes are still computed (not folded) is left as it is. Leaves the old
    sizes tensors dangling for ``cleanup``.
    """
    if any(n.op == "Upsample" for n in graph.nodes):
        if int(graph.opset) < 10:
            graph = _convert_old_upsample(graph)
        else:
            for node in [n for n in graph.nodes if n.op == "Upsample"]:
                _upsample_to_resize(graph, node)
    changed = 0
    for node in [n for n in graph.nodes if n.op == "Resize"]:
        try:
            changed += _sizes_to_scales(graph, node)
        except GraphError:
            raise
        except Exception as err:
            raise GraphError(f"normalize-resize failed on {node_label(node)}: {err}") from err
    log.info("normalize-resize: %d Resize node(s) now use constant scales", changed)
    return graph
