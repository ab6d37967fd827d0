"""Empirical bias correction of a Q/DQ model (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction", section 4.2, empirical variant).

Rounding a convolution's weights to int8 shifts the *mean* of its output channels:
``E[y_q - y]_c = E[conv(x, W_q - W)]_c`` is not zero in general, and the shift adds up
through the network. Measured on calibration images, it is subtracted from the layer's
float bias, so each quantised convolution is unbiased on those images. (Correcting the
shift of the activation Q/DQ too, ``E[conv(Q(x), W_q) - conv(x, W)]``, in the same single
pass over-corrects: YOLOX-Nano 46.7 -> 42.5 mAP50; it is not offered.)

The inputs ``x`` are the Q/DQ model's own (the quantised network's activations, as Nagel's
empirical variant uses), measured in one onnxruntime run per image for every layer at once
(:mod:`edgesdk.quant.probe`; the exact convolution, padding included, with the weight
difference as the kernel). The result is the same Q/DQ model with changed float bias
initializers: what TensorRT executes for any Q/DQ model. Only ``Conv`` nodes whose weight
comes through a per-channel or per-tensor ``QuantizeLinear -> DequantizeLinear`` pair of a
constant are corrected; other nodes are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.quant.probe import Prober, run_sums

if TYPE_CHECKING:
    import onnx

__all__ = ["BiasCorrection", "correct_biases", "fake_quant_weight"]

ProgressFn = Callable[[int, int], None]


@dataclass
class BiasCorrection:
    """What :func:`correct_biases` changed.

    Attributes:
        model: the corrected Q/DQ model.
        shifts: Conv node name -> (C,) mean output shift that was subtracted from its bias.
        images: feeds (batches) measured on.
    """

    model: onnx.ModelProto
    shifts: dict[str, np.ndarray] = field(default_factory=dict)
    images: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data: per corrected layer, the largest |shift|."""
        return {
            "images": self.images,
            "layers": len(self.shifts),
            "max_abs_shift": {name: float(np.abs(s).max()) for name, s in self.shifts.items()},
        }


def fake_quant_weight(weight: np.ndarray, scale: np.ndarray, axis: int | None) -> np.ndarray:
    """``DequantizeLinear(QuantizeLinear(W))`` in numpy: symmetric int8, round half to even."""
    s = np.asarray(scale, np.float32)
    if axis is not None and s.ndim == 1:
        shape = [1] * weight.ndim
        shape[axis] = -1
        s = s.reshape(shape)
    return (np.clip(np.rint(weight / s), -128, 127) * s).astype(np.float32)


def _weight_qdq(node: gs.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(W, W_q) when the Conv's weight is DQ(Q(constant)); else None."""
    if len(node.inputs) < 2 or not node.inputs[1].inputs:
        return None
    dq = node.inputs[1].inputs[0]
    if dq.op != "DequantizeLinear" or not dq.inputs[0].inputs:
        return None
    q = dq.inputs[0].inputs[0]
    if (
        q.op != "QuantizeLinear"
        or not isinstance(q.inputs[0], gs.Constant)
        or not isinstance(q.inputs[1], gs.Constant)
    ):
        return None
    weight = np.asarray(q.inputs[0].values, np.float32)
    axis = q.attrs.get("axis", 1)
    scale = np.asarray(q.inputs[1].values)
    return weight, fake_quant_weight(weight, scale, int(axis) if scale.ndim == 1 else None)


def _branches(graph: gs.Graph, prober: Prober) -> dict[str, tuple[gs.Node, str]]:
    outputs: dict[str, tuple[gs.Node, str]] = {}
    opset = int(graph.opset)
    for node in list(graph.nodes):
        if node.op != "Conv":
            continue
        pair = _weight_qdq(node)
        if pair is None:
            continue
        weight, quantized = pair
        x = node.inputs[0]
        shift = prober.node("Conv", [x, prober.const(quantized - weight, "dw")], dict(node.attrs))
        axes = [0] + list(range(2, len(weight.shape)))
        outputs[node.name or node.outputs[0].name] = (node, prober.channel_mean(shift, axes, opset))
    return outputs


def _set_bias(node: gs.Node, shift: np.ndarray) -> None:
    if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant):
        old = np.asarray(node.inputs[2].values, np.float32)
        name = node.inputs[2].name
    else:
        old = np.zeros(shift.shape, np.float32)
        name = f"{node.name or node.outputs[0].name}_bias"
    bias = gs.Constant(f"{name}_corrected", (old - shift).astype(np.float32))
    if len(node.inputs) > 2:
        node.inputs[2] = bias
    else:
        node.inputs.append(bias)


def correct_biases(
    qdq: onnx.ModelProto,
    feeds: Iterable[Mapping[str, np.ndarray]],
    *,
    total: int = 0,
    progress: ProgressFn | None = None,
) -> BiasCorrection:
    """Subtract each quantised Conv's mean output shift (over ``feeds``) from its bias.

    Args:
        qdq: the Q/DQ model (:func:`~edgesdk.quant.calibrate.qdq_model`); not modified.
        feeds: input dicts (the model's input name -> a pre-processed batch).
        total: how many feeds there are (for ``progress`` only).
        progress: ``progress(done, total)`` per feed.

    Returns:
        The corrected model and the shifts (see :class:`BiasCorrection`).

    Raises:
        GraphError: onnxruntime cannot run the probe model.
    """
    from edgesdk.graph.io import to_graph, to_model

    probe_graph = to_graph(qdq)
    prober = Prober(probe_graph)
    branches = _branches(probe_graph, prober)
    seen = [0]

    def counted() -> Iterable[Mapping[str, np.ndarray]]:
        for feed in feeds:
            seen[0] += 1
            yield feed

    names = [o for _n, o in branches.values()]
    sums = run_sums(to_model(probe_graph), names, counted(), progress=progress, total=total)
    batches = max(seen[0], 1)
    graph = to_graph(qdq)
    by_name = {n.name or n.outputs[0].name: n for n in graph.nodes}
    result = BiasCorrection(qdq)
    for name, (_node, output) in branches.items():
        if output not in sums:
            continue
        shift = (sums[output] / batches).astype(np.float32)
        _set_bias(by_name[name], shift)
        result.shifts[name] = shift
    result.model = to_model(graph.cleanup(), like=qdq)
    result.images = seen[0]
    return result
