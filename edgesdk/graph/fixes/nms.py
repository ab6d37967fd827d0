"""Append YOLO box decoding and TensorRT's ``EfficientNMS_TRT`` plugin node.

Plugin attributes and outputs follow TensorRT's plugin/efficientNMSPlugin/README.md:
inputs ``boxes [B, N, 4]`` and ``scores [B, N, C]``; attributes ``score_threshold``,
``iou_threshold``, ``max_output_boxes``, ``background_class`` (-1: none),
``score_activation`` (sigmoid inside the plugin), ``class_agnostic``, ``box_coding``
(0 = x1y1x2y2 corners, 1 = cx cy w h); outputs ``num_detections [B, 1] int32``,
``detection_boxes [B, K, 4] float32`` (always corners), ``detection_scores [B, K] float32``,
``detection_classes [B, K] int32``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import GraphError
from edgesdk.graph._util import static_shape, unique_name
from edgesdk.graph.registry import FixContext, register_fix

log = logging.getLogger(__name__)

BOX_CORNERS = 0
BOX_CENTER_SIZE = 1
NMS_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")

Decoded = tuple[gs.Variable, gs.Variable, int]
DecodeFn = Callable[[gs.Graph, gs.Tensor, FixContext], Decoded]


def _op(graph: gs.Graph, op: str, inputs: list[gs.Tensor], name: str, **attrs: Any) -> gs.Variable:
    """Append one node with a single float output named ``name`` (made unique)."""
    out = gs.Variable(unique_name(graph, name), dtype=np.float32)
    graph.nodes.append(
        gs.Node(op=op, name=unique_name(graph, f"{name}_{op}"), attrs=attrs, inputs=inputs, outputs=[out])
    )
    return out


def _const(graph: gs.Graph, name: str, value: np.ndarray) -> gs.Constant:
    return gs.Constant(unique_name(graph, name), np.ascontiguousarray(value))


def _slice_last(graph: gs.Graph, x: gs.Tensor, start: int, end: int, name: str) -> gs.Variable:
    """``x[..., start:end]`` on the last axis of a rank-3 tensor (Slice-10+ inputs)."""
    args = [np.array([v], np.int64) for v in (start, end, 2)]
    consts = [_const(graph, f"{name}_{k}", a) for k, a in zip(("starts", "ends", "axes"), args)]
    return _op(graph, "Slice", [x, *consts], name)


def _rows(x: gs.Tensor, what: str) -> tuple[int, int]:
    """(N, 5 + C) of a static [B, N, 5 + C] output."""
    shape = static_shape(x)
    if shape is None or len(shape) != 3:
        raise GraphError(
            f"efficient-nms: {what} output {x.name!r} needs a static [B, N, K] shape, got {x.shape}",
            hint="list static-shape and infer-shapes before efficient-nms in the recipe",
        )
    return shape[1], shape[2]


def _obj_times_cls(graph: gs.Graph, x: gs.Tensor, width: int) -> gs.Variable:
    if width < 6:
        raise GraphError(f"efficient-nms: output {x.name!r} has {width} channels; expected 5 + classes")
    obj = _slice_last(graph, x, 4, 5, "nms_obj")
    cls = _slice_last(graph, x, 5, width, "nms_cls")
    return _op(graph, "Mul", [cls, obj], "nms_scores")


def _decode_yolov5(graph: gs.Graph, x: gs.Tensor, ctx: FixContext) -> Decoded:
    """[B, N, 5 + C] = (cx, cy, w, h in input px, obj, class scores), already decoded."""
    _, width = _rows(x, "yolov5")
    boxes = _slice_last(graph, x, 0, 4, "nms_boxes")
    return boxes, _obj_times_cls(graph, x, width), BOX_CENTER_SIZE


def yolox_grids(height: int, width: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """YOLOX grid offsets and strides, in output row order.

    Returns:
        ``(grid [1, N, 2] float32 as (x, y) cell indices, stride [1, N, 1] float32)``, rows
        ordered stride by stride, then row-major (y, x) within each feature map.
    """
    grids, steps = [], []
    for stride in strides:
        hs, ws = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        steps.append(np.full((hs * ws, 1), stride))
    grid = np.concatenate(grids)[None].astype(np.float32)
    step = np.concatenate(steps)[None].astype(np.float32)
    return grid, step


def _decode_yolox(graph: gs.Graph, x: gs.Tensor, ctx: FixContext) -> Decoded:
    """[B, N, 5 + C] = (tx, ty, tw, th raw, obj, class scores); xy = (t + grid)·s, wh = exp(t)·s."""
    rows, width = _rows(x, "yolox")
    if ctx.input_shape is None:
        raise GraphError("efficient-nms (yolox) needs the input size", hint="set the recipe's input.shape")
    height, in_width = ctx.input_shape[2], ctx.input_shape[3]
    strides = tuple(int(s) for s in ctx.postprocess.get("strides", (8, 16, 32)))
    grid, step = yolox_grids(height, in_width, strides)
    if grid.shape[1] != rows:
        raise GraphError(
            f"efficient-nms (yolox): strides {strides} at {in_width}x{height} give {grid.shape[1]} rows,"
            f" the output has {rows}",
            hint="check postprocess.strides and input.shape in the recipe",
        )
    t_xy = _slice_last(graph, x, 0, 2, "nms_txy")
    t_wh = _slice_last(graph, x, 2, 4, "nms_twh")
    step_c = _const(graph, "nms_stride", step)
    xy = _op(
        graph,
        "Mul",
        [_op(graph, "Add", [t_xy, _const(graph, "nms_grid", grid)], "nms_xy_cell"), step_c],
        "nms_xy",
    )
    wh = _op(graph, "Mul", [_op(graph, "Exp", [t_wh], "nms_wh_exp"), step_c], "nms_wh")
    boxes = _op(graph, "Concat", [xy, wh], "nms_boxes", axis=2)
    return boxes, _obj_times_cls(graph, x, width), BOX_CENTER_SIZE


def _decode_yolov8(graph: gs.Graph, x: gs.Tensor, ctx: FixContext) -> Decoded:
    """Decoded export [B, 4 + C, N] = (cx, cy, w, h in input px, class scores); no objectness."""
    if ctx.postprocess.get("dfl"):
        raise GraphError(
            "efficient-nms: yolov8 raw DFL heads are not supported", hint="export the decoded head"
        )
    shape = static_shape(x)
    if shape is None or len(shape) != 3 or shape[1] < 5:
        raise GraphError(f"efficient-nms (yolov8): output {x.name!r} needs a static [B, 4 + C, N] shape")
    rows = _op(graph, "Transpose", [x], "nms_rows", perm=[0, 2, 1])
    return (
        _slice_last(graph, rows, 0, 4, "nms_boxes"),
        _slice_last(graph, rows, 4, shape[1], "nms_scores"),
        BOX_CENTER_SIZE,
    )


DECODERS: dict[str, DecodeFn] = {"yolov5": _decode_yolov5, "yolox": _decode_yolox, "yolov8": _decode_yolov8}


def _plugin_attrs(ctx: FixContext, box_coding: int, max_output_boxes: int | None) -> dict[str, Any]:
    post = ctx.postprocess
    return {
        "plugin_version": "1",
        "background_class": -1,
        "max_output_boxes": int(max_output_boxes or post.get("max_detections", 100)),
        "score_threshold": float(post.get("conf_threshold", 0.25)),
        "iou_threshold": float(post.get("iou_threshold", 0.45)),
        "score_activation": 0,  # the decoded scores are probabilities already
        "class_agnostic": int(bool(post.get("class_agnostic", False))),
        "box_coding": int(box_coding),
    }


@register_fix("efficient-nms")
def efficient_nms(
    graph: gs.Graph,
    ctx: FixContext,
    output: str | None = None,
    max_output_boxes: int | None = None,
    domain: str = "TRT",
) -> gs.Graph:
    """Append YOLO box decoding and an ``EfficientNMS_TRT`` node; its 4 outputs become the graph's.

    Decoders: ``yolov5`` and ``yolox`` ([B, N, 5 + C]) and ``yolov8`` (decoded [B, 4 + C, N]),
    named by ``ctx.postprocess["decoder"]``. Thresholds, ``max_detections`` and
    ``class_agnostic`` come from the recipe's postprocess section; they are baked into the
    TensorRT engine (changing them means rebuilding it). onnxruntime cannot run the plugin.

    Args:
        graph: the graph (edited in place).
        ctx: ``postprocess`` (decoder and thresholds) and ``input_shape`` (YOLOX grids).
        output: the raw output to decode (default: the only graph output).
        max_output_boxes: overrides ``postprocess.max_detections``.
        domain: ONNX domain of the plugin node. "TRT" (the default, as ultralytics writes it)
            keeps the model valid for ``onnx.checker``; "" is what NVIDIA's GS samples write. The
            parser finds the plugin by op name; onnx-tensorrt's changelog first mentions reading a
            plugin namespace from the domain in 10.10 (newer than the versions linted here).

    Invariants: replaces the graph outputs by ``num_detections``, ``detection_boxes``,
    ``detection_scores``, ``detection_classes``; never changes the existing nodes or values.
    Requires static output shapes (run static-shape / infer-shapes first).
    """
    decoder = str(ctx.postprocess.get("decoder", ""))
    if decoder not in DECODERS:
        raise GraphError(
            f"efficient-nms cannot decode {decoder or 'an unnamed decoder'!r} outputs",
            hint=f"supported decoders: {', '.join(sorted(DECODERS))}; drop efficient-nms from the recipe",
        )
    raw = _pick_output(graph, output)
    taken = set(graph.tensors()) - {raw.name}
    clash = [n for n in NMS_OUTPUTS if n in taken]
    if clash:
        raise GraphError(f"efficient-nms: the graph already has tensors named {clash}")
    boxes, scores, coding = DECODERS[decoder](graph, raw, ctx)
    attrs = _plugin_attrs(ctx, coding, max_output_boxes)
    raw_shape = static_shape(raw)
    batch: int | str = raw_shape[0] if raw_shape else "batch"
    top = attrs["max_output_boxes"]
    outs = [
        gs.Variable("num_detections", dtype=np.int32, shape=[batch, 1]),
        gs.Variable("detection_boxes", dtype=np.float32, shape=[batch, top, 4]),
        gs.Variable("detection_scores", dtype=np.float32, shape=[batch, top]),
        gs.Variable("detection_classes", dtype=np.int32, shape=[batch, top]),
    ]
    node = gs.Node(
        op="EfficientNMS_TRT", name="efficient_nms", attrs=attrs, inputs=[boxes, scores], outputs=outs
    )
    node.domain = domain or None
    graph.nodes.append(node)
    graph.outputs = outs
    log.info("efficient-nms: %s decode + EfficientNMS_TRT %s", decoder, attrs)
    return graph


def _pick_output(graph: gs.Graph, name: str | None) -> gs.Variable:
    if name is None:
        if len(graph.outputs) != 1:
            raise GraphError(
                f"efficient-nms: the graph has {len(graph.outputs)} outputs; say which one to decode",
                hint="{efficient-nms: {output: NAME}}",
            )
        return graph.outputs[0]
    for tensor in graph.outputs:
        if tensor.name == name:
            return tensor
    raise GraphError(
        f"efficient-nms: no graph output {name!r}", hint=f"outputs: {[t.name for t in graph.outputs]}"
    )
