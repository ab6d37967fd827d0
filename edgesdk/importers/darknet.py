"""darknet ``.cfg`` + ``.weights`` -> ONNX, with numpy and onnx only (no framework).

The graph matches OpenCV's darknet importer (``cv2.dnn.readNetFromDarknet``): BN uses
``epsilon = 1e-6`` like OpenCV; upsample is nearest (asymmetric, floor); maxpool pads
``padding // 2`` at the start and the rest at the end (so size 2 stride 1 pads right and
bottom). Names carry the darknet layer index: nodes ``conv_12``, ``bn_12``,
``leaky_12``, ``shortcut_12``, ``route_12``, ``maxpool_12``, ``upsample_12``; initializers
``conv_12.weight``, ``conv_12.bias``, ``bn_12.scale|bias|mean|var``. A node's output
tensor has the node's name, except the raw conv outputs feeding the ``[yolo]`` layers,
which are the graph outputs ``yolo_0``, ``yolo_1``, ... in ``[yolo]`` order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import edgesdk
from edgesdk.errors import EdgeSdkInternalError, ModelFormatError, RecipeError
from edgesdk.importers.darknet_cfg import (
    ConvSpec,
    DarknetCfg,
    DropoutSpec,
    MaxPoolSpec,
    RouteSpec,
    ShortcutSpec,
    UpsampleSpec,
    YoloSpec,
    read_cfg,
)
from edgesdk.importers.darknet_shapes import Shape, infer_shapes, input_shapes, weight_count
from edgesdk.importers.darknet_weights import WeightsReader

INPUT_NAME = "images"
BN_EPSILON = 1e-6  # OpenCV's darknet importer (darknet's CPU path adds 1e-6 to the std instead)
LEAKY_ALPHA = 0.1
OPSETS = range(11, 22)


@dataclass
class _Graph:
    """What the layer handlers build: nodes, initializers and each layer's output tensor."""

    opset: int
    fuse_bn: bool
    weights: WeightsReader
    shapes: list[Shape]
    inputs: list[Shape]
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[TensorProto] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # darknet layer index -> tensor name

    def node(self, op: str, name: str, inputs: list[str], **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def previous(self, index: int) -> str:
        return self.outputs[index - 1] if index else INPUT_NAME


def _activation(g: _Graph, x: str, kind: str, index: int) -> str:
    """Apply a darknet activation; mish and swish are composed from opset-13 ops (TensorRT has them)."""
    if kind == "linear":
        return x
    if kind == "leaky":
        return g.node("LeakyRelu", f"leaky_{index}", [x], alpha=LEAKY_ALPHA)
    if kind == "relu":
        return g.node("Relu", f"relu_{index}", [x])
    if kind == "logistic":
        return g.node("Sigmoid", f"logistic_{index}", [x])
    if kind == "swish":
        sig = g.node("Sigmoid", f"swish_{index}_sigmoid", [x])
        return g.node("Mul", f"swish_{index}", [x, sig])
    if kind == "mish":  # x * tanh(softplus(x)); ONNX has Mish only from opset 18
        soft = g.node("Softplus", f"mish_{index}_softplus", [x])
        tanh = g.node("Tanh", f"mish_{index}_tanh", [soft])
        return g.node("Mul", f"mish_{index}", [x, tanh])
    raise EdgeSdkInternalError(f"activation {kind!r} passed the cfg parser but has no ONNX mapping")


def _fold_bn(
    kernel: np.ndarray, beta: np.ndarray, gamma: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fold inference BN into the conv: W' = W * gamma / std, b' = beta - mean * gamma / std."""
    factor = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPSILON)
    weight = kernel * factor[:, None, None, None]
    bias = beta - mean * factor
    return weight.astype(np.float32), bias.astype(np.float32)


def _conv(g: _Graph, spec: ConvSpec) -> str:
    i, f = spec.index, spec.filters
    shape = (f, g.inputs[i][0] // spec.groups, spec.size, spec.size)
    bias = g.weights.take(f)  # BN beta when batch_normalize
    bn = g.weights.take(3 * f).reshape(3, f) if spec.batch_normalize else None  # gamma, mean, var
    kernel = g.weights.take(int(np.prod(shape))).reshape(shape)
    attrs: dict[str, Any] = dict(
        kernel_shape=[spec.size, spec.size],
        strides=[spec.stride, spec.stride],
        pads=[spec.padding] * 4,
        group=spec.groups,
    )
    if bn is not None and g.fuse_bn:
        kernel, bias = _fold_bn(kernel, bias, *bn)
    inputs = [g.previous(i), g.const(f"conv_{i}.weight", kernel)]
    if bn is None or g.fuse_bn:
        y = g.node("Conv", f"conv_{i}", [*inputs, g.const(f"conv_{i}.bias", bias)], **attrs)
    else:
        y = g.node("Conv", f"conv_{i}", inputs, **attrs)
        values = {"scale": bn[0], "bias": bias, "mean": bn[1], "var": bn[2]}
        params = [g.const(f"bn_{i}.{name}", value) for name, value in values.items()]
        y = g.node("BatchNormalization", f"bn_{i}", [y, *params], epsilon=BN_EPSILON)
    return _activation(g, y, spec.activation, i)


def _shortcut(g: _Graph, spec: ShortcutSpec) -> str:
    y = g.previous(spec.index)
    for k, src in enumerate(spec.sources):
        name = f"shortcut_{spec.index}" if k == len(spec.sources) - 1 else f"shortcut_{spec.index}_{k}"
        y = g.node("Add", name, [y, g.outputs[src]])
    return _activation(g, y, spec.activation, spec.index)


def _split(g: _Graph, spec: RouteSpec, src: int) -> str:
    """The ``group_id``-th of ``groups`` equal channel chunks of layer ``src``."""
    i, chunk = spec.index, g.shapes[src][0] // spec.groups
    names = [f"route_{i}_split_{src}_{k}" for k in range(spec.groups)]
    sizes = np.full(spec.groups, chunk, dtype=np.int64)
    node_name = f"route_{i}_split_{src}"
    if g.opset >= 13:
        inputs = [g.outputs[src], g.const(f"{node_name}.split", sizes)]
        g.nodes.append(helper.make_node("Split", inputs, names, name=node_name, axis=1))
    else:
        node = helper.make_node(
            "Split", [g.outputs[src]], names, name=node_name, axis=1, split=sizes.tolist()
        )
        g.nodes.append(node)
    return names[spec.group_id]


def _route(g: _Graph, spec: RouteSpec) -> str:
    parts = [_split(g, spec, s) if spec.groups > 1 else g.outputs[s] for s in spec.sources]
    if len(parts) == 1:
        return parts[0]  # one source: a reference (darknet copies; no node needed)
    return g.node("Concat", f"route_{spec.index}", parts, axis=1)


def _upsample(g: _Graph, spec: UpsampleSpec) -> str:
    i, s = spec.index, float(spec.stride)
    scales = g.const(f"upsample_{i}.scales", np.array([1.0, 1.0, s, s], dtype=np.float32))
    roi = "" if g.opset >= 13 else g.const(f"upsample_{i}.roi", np.zeros(0, dtype=np.float32))
    return g.node(
        "Resize",
        f"upsample_{i}",
        [g.previous(i), roi, scales],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


def _maxpool(g: _Graph, spec: MaxPoolSpec) -> str:
    begin, end = spec.padding // 2, spec.padding - spec.padding // 2
    return g.node(
        "MaxPool",
        f"maxpool_{spec.index}",
        [g.previous(spec.index)],
        kernel_shape=[spec.size, spec.size],
        strides=[spec.stride, spec.stride],
        pads=[begin, begin, end, end],
    )


def _dropout(g: _Graph, spec: DropoutSpec) -> str:
    return g.previous(spec.index)  # identity at inference: no node


def _yolo(g: _Graph, spec: YoloSpec) -> str:
    return g.previous(spec.index)  # the raw head; renamed to yolo_<k> at the end


_HANDLERS: dict[type, Callable[[_Graph, Any], str]] = {
    ConvSpec: _conv,
    ShortcutSpec: _shortcut,
    RouteSpec: _route,
    UpsampleSpec: _upsample,
    MaxPoolSpec: _maxpool,
    DropoutSpec: _dropout,
    YoloSpec: _yolo,
}


def _name_heads(g: _Graph, heads: list[YoloSpec]) -> list[str]:
    """Rename the tensors feeding the [yolo] layers to ``yolo_<k>`` (Identity if one is shared)."""
    renames: dict[str, str] = {}
    names = []
    for k, spec in enumerate(heads):
        src, out = g.outputs[spec.index], f"yolo_{k}"
        if src == INPUT_NAME or src in renames:
            g.node("Identity", out, [renames.get(src, src)])
        else:
            renames[src] = out
        names.append(out)
    for node in g.nodes:
        for j, name in enumerate(node.input):
            node.input[j] = renames.get(name, name)
        for j, name in enumerate(node.output):
            node.output[j] = renames.get(name, name)
    return names


def _metadata(
    cfg_path: Path, weights: WeightsReader, heads: list[YoloSpec], g: _Graph, h: int
) -> dict[str, str]:
    info = []
    for k, spec in enumerate(heads):
        _, gh, gw = g.shapes[spec.index]
        info.append(
            {
                "output": f"yolo_{k}",
                "layer": spec.index,
                "mask": list(spec.mask),
                "anchors": [list(a) for a in spec.head_anchors],
                "classes": spec.classes,
                "scale_x_y": spec.scale_x_y,
                "new_coords": spec.new_coords,
                "grid": [gh, gw],
                "stride": h // gh,
            }
        )
    hdr = weights.header
    return {
        "source": "darknet",
        "darknet_cfg": cfg_path.name,
        "darknet_weights": weights.path.name,
        "darknet_weights_header": json.dumps(
            {"major": hdr.major, "minor": hdr.minor, "revision": hdr.revision, "seen": hdr.seen}
        ),
        "bn_fused": json.dumps(g.fuse_bn),
        "yolo_heads": json.dumps(info),
        "edgesdk_version": edgesdk.__version__,
    }


def _check_args(opset: int, batch: int) -> None:
    if opset not in OPSETS:
        raise RecipeError(
            f"opset {opset} is not supported by the darknet importer; use {OPSETS[0]}..{OPSETS[-1]}"
        )
    if batch < 1:
        raise RecipeError(f"batch must be a positive integer, got {batch}")


def _build_graph(
    cfg: DarknetCfg, weights: WeightsReader, *, fuse_bn: bool, opset: int
) -> tuple[_Graph, list[YoloSpec]]:
    """Turn parsed layers plus their weights into ONNX nodes (no model wrapper)."""
    shapes = infer_shapes(cfg)
    g = _Graph(opset, fuse_bn, weights, shapes, input_shapes(cfg, shapes))
    for spec in cfg.layers:
        g.outputs.append(_HANDLERS[type(spec)](g, spec))
    if weights.remaining:
        raise EdgeSdkInternalError(f"{weights.remaining} weights left over after the last layer")
    return g, [spec for spec in cfg.layers if isinstance(spec, YoloSpec)]


def darknet_to_onnx(
    cfg_path: Path, weights_path: Path, *, fuse_bn: bool = True, opset: int = 13, batch: int = 1
) -> onnx.ModelProto:
    """Convert a darknet model to ONNX.

    Args:
        cfg_path: the ``.cfg`` (AlexeyAB dialect; see :mod:`edgesdk.importers.darknet_cfg`).
        weights_path: the matching ``.weights``.
        fuse_bn: fold BatchNormalization into the convolutions; False keeps ``bn_<i>`` nodes
            (network slimming reads their gamma).
        opset: ONNX opset, 11..21.
        batch: static batch size of the input.

    Returns:
        A checked model with input ``images`` float32 [batch, C, H, W] (C, H, W from
        ``[net]``; RGB, 0..1, plain resize) and outputs ``yolo_<k>`` float32
        [batch, A*(5+classes), h, w]: the raw conv outputs of each ``[yolo]`` layer, in cfg
        order. ``metadata_props`` has ``source=darknet``, the file names and ``yolo_heads``
        (JSON: per head its anchors in input pixels, mask, classes, scale_x_y, stride).

    Raises:
        ArtifactNotFound: a file does not exist.
        ModelFormatError: the cfg does not parse (file and line in the message), the
            weights are truncated or too long (both counts in the message), or the cfg has
            no ``[yolo]`` layer.
        RecipeError: opset or batch out of range.
    """
    _check_args(opset, batch)
    cfg_path, weights_path = Path(cfg_path), Path(weights_path)
    cfg = read_cfg(cfg_path)
    weights = WeightsReader(weights_path, weight_count(cfg), str(cfg_path))
    g, heads = _build_graph(cfg, weights, fuse_bn=fuse_bn, opset=opset)
    if not heads:
        raise ModelFormatError(f"{cfg_path}: has no [yolo] layer; only darknet YOLO detectors are supported")
    outputs = _name_heads(g, heads)
    net = cfg.net
    graph = helper.make_graph(
        g.nodes,
        f"darknet_{cfg_path.stem}",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, [batch, net.channels, net.height, net.width]
            )
        ],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, *g.shapes[spec.index]])
            for name, spec in zip(outputs, heads)
        ],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="edgesdk", producer_version=edgesdk.__version__
    )
    # the oldest IR version that carries the opset, so older TensorRT parsers accept the file
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.doc_string = f"darknet {cfg_path.name} + {weights_path.name}"
    helper.set_model_props(model, _metadata(cfg_path, weights, heads, g, net.height))
    onnx.checker.check_model(model)
    return model
