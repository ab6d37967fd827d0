"""Cross-layer equalisation of activation ranges (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction", section 4.1; activation-aware scales).

A per-tensor int8 scale serves every channel of an activation: a channel whose values stay
100x below the tensor's largest channel gets ~1 of its 127 levels. ReLU and LeakyReLU are
positively homogeneous (``f(s x) = s f(x)`` for ``s > 0``), so for a chain

    conv_A -> [act] -> x1 -> conv_B                                   (pair)
    conv_A -> [act] -> x1 -> depthwise conv -> [act] -> x2 -> conv_B  (triple)

dividing channel i of conv_A's output (weights and bias) by ``s_i`` and multiplying conv_B's
input channel i by ``s_i`` leaves the float model's output unchanged (exact up to rounding).
Through a depthwise conv, x1 and x2 get separate scales ``s1`` and ``s2``: the depthwise
kernel of channel i is multiplied by ``s1_i / s2_i`` and its bias divided by ``s2_i``.

Scales, from per-channel ranges ``a_i = max |x_i|`` measured on calibration images and
``w_i`` = the largest ``|W_B[o, i]| / max_j |W_B[o, j]|`` over conv_B's output channels
(how much of its per-channel int8 weight range input i uses):

- a tensor between two layers whose weights are quantised per *output* channel on both
  sides of the scale (x1 of a triple: conv_A's rows and the depthwise kernels) costs no
  weight precision: ``s_i = a_i / max a`` (every channel reaches the same range);
- a tensor read by conv_B trades activation against weight levels (SmoothQuant's balance):
  ``s_i = (a_i / max a)^alpha / (w_i / max w)^(1 - alpha)``, ``alpha`` = ``strength``.

Scales are clipped to ``[MIN_SCALE, 1 / MIN_SCALE]`` (dead channels). Only chains whose inner
tensors have exactly one consumer and are not graph outputs are changed; Conv weights and
biases must be constants; conv_B must have ``group = 1``. SiLU, Clip and other activations
are not homogeneous: chains through them are left alone.

The pass changes the *float* model: the Q/DQ model and the calibration cache are computed
from the equalised model, so the ONNX model that runs on the device must be that one too
(``edgesdk calibrate -o DIR`` writes it as ``model.onnx``; deploy with ``--calibration DIR``
bundles it as the model).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

__all__ = ["MIN_SCALE", "Chain", "Equalization", "apply_scales", "channel_ranges", "equalize", "find_chains"]

MIN_SCALE = 1e-3
"""Scales are clipped to [MIN_SCALE, 1/MIN_SCALE]."""

_HOMOGENEOUS = ("Relu", "LeakyRelu")


@dataclass
class Chain:
    """One equalisable chain (see the module docstring).

    Attributes:
        first: conv_A (its output channels are divided by ``s1``).
        x1: the tensor conv_A's chain feeds to the depthwise conv or conv_B.
        last: conv_B (its input channels are multiplied by the last scale).
        depthwise: the depthwise conv of a triple, else None.
        x2: the tensor the depthwise conv's chain feeds to conv_B (triples only).
    """

    first: gs.Node
    x1: gs.Variable
    last: gs.Node
    depthwise: gs.Node | None = None
    x2: gs.Variable | None = None

    @property
    def tensors(self) -> list[str]:
        """The equalised tensors' names (x1, then x2 for a triple)."""
        return [self.x1.name] + ([self.x2.name] if self.x2 is not None else [])


@dataclass
class Equalization:
    """What :func:`equalize` did.

    Attributes:
        graph: the equalised graph.
        chains: the chains changed.
        scales: tensor name -> (C,) scale it was divided by.
        images: batches the ranges were measured on.
    """

    graph: gs.Graph
    chains: list[Chain] = field(default_factory=list)
    scales: dict[str, np.ndarray] = field(default_factory=dict)
    images: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data: per equalised tensor, the smallest and largest scale."""
        return {
            "images": self.images,
            "chains": len(self.chains),
            "tensors": {
                name: {"min_scale": float(s.min()), "max_scale": float(s.max())}
                for name, s in self.scales.items()
            },
        }


def _weights(node: gs.Node | None) -> np.ndarray | None:
    """The constant weight of a Conv whose bias (if any) is constant too; else None."""
    if node is None or node.op != "Conv" or len(node.inputs) < 2:
        return None
    if not all(isinstance(t, gs.Constant) for t in node.inputs[1:3]):
        return None
    return np.asarray(node.inputs[1].values)


def _is_depthwise(node: gs.Node, channels: int) -> bool:
    weight = _weights(node)
    return (
        weight is not None
        and int(node.attrs.get("group", 1)) == channels
        and weight.shape[0] == channels
        and weight.shape[1] == 1
    )


def _is_plain(node: gs.Node, channels: int) -> bool:
    weight = _weights(node)
    return weight is not None and int(node.attrs.get("group", 1)) == 1 and weight.shape[1] == channels


def _sole(tensor: gs.Tensor, outputs: set[str]) -> gs.Node | None:
    """The only consumer of ``tensor`` (None if it has several, none, or is a graph output)."""
    if tensor.name in outputs or len(tensor.outputs) != 1:
        return None
    return tensor.outputs[0]


def _follow(tensor: gs.Tensor, outputs: set[str]) -> tuple[gs.Variable, gs.Node] | None:
    """(the tensor after an optional homogeneous activation, its sole consumer)."""
    consumer = _sole(tensor, outputs)
    if consumer is not None and consumer.op in _HOMOGENEOUS:
        tensor = consumer.outputs[0]
        consumer = _sole(tensor, outputs)
    return (tensor, consumer) if consumer is not None else None


def find_chains(graph: gs.Graph) -> list[Chain]:
    """Equalisable chains of ``graph`` in graph order (see the module docstring).

    Requires a toposorted graph; does not modify it. Every node is in at most one chain as
    conv_A, one as conv_B, and a depthwise conv of a triple in no other role.
    """
    outputs = {t.name for t in graph.outputs}
    chains: list[Chain] = []
    middle: set[int] = set()
    for node in graph.nodes:
        weight = _weights(node)
        if weight is None or id(node) in middle:
            continue
        channels = weight.shape[0]
        step = _follow(node.outputs[0], outputs)
        if step is None:
            continue
        x1, nxt = step
        if _is_plain(nxt, channels):
            chains.append(Chain(node, x1, nxt))
        elif _is_depthwise(nxt, channels) and id(nxt) not in middle:
            after = _follow(nxt.outputs[0], outputs)
            if after is not None and _is_plain(after[1], channels):
                middle.add(id(nxt))
                chains.append(Chain(node, x1, after[1], nxt, after[0]))
    return chains


def channel_ranges(
    model: Any, tensors: list[str], feeds: Iterable[Mapping[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], int]:
    """Per-channel ``max |x|`` (axis 1) of ``tensors`` over ``feeds``, and how many feeds ran.

    Args:
        model: an ``onnx.ModelProto`` (not modified).
        tensors: names of 4-D (N, C, H, W) tensors.
        feeds: input dicts.

    Raises:
        GraphError: onnxruntime cannot run the model.
    """
    from edgesdk.graph.io import onnxruntime_runner, to_graph, to_model

    graph = to_graph(model)
    found = graph.tensors()
    opset = int(graph.opset)
    names: dict[str, str] = {}
    for i, name in enumerate(tensors):
        absolute = gs.Variable(f"equalize/{i}/abs", dtype=np.float32)
        reduced = gs.Variable(f"equalize/{i}/max", dtype=np.float32)
        graph.nodes.append(gs.Node("Abs", f"equalize/{i}/Abs", {}, [found[name]], [absolute]))
        axes = gs.Constant(f"equalize/{i}/axes", np.array([0, 2, 3], np.int64))
        if opset >= 18:
            node = gs.Node(
                "ReduceMax", f"equalize/{i}/ReduceMax", {"keepdims": 0}, [absolute, axes], [reduced]
            )
        else:
            node = gs.Node(
                "ReduceMax",
                f"equalize/{i}/ReduceMax",
                {"axes": [0, 2, 3], "keepdims": 0},
                [absolute],
                [reduced],
            )
        graph.nodes.append(node)
        graph.outputs.append(reduced)
        names[name] = reduced.name
    run = onnxruntime_runner(to_model(graph))
    ranges: dict[str, np.ndarray] = {}
    count = 0
    for feed in feeds:
        values = run(feed)
        count += 1
        for name, out in names.items():
            value = np.asarray(values[out], np.float64)
            ranges[name] = np.maximum(ranges[name], value) if name in ranges else value
    return ranges, count


def _column_use(weight: np.ndarray) -> np.ndarray:
    """(C_in,) largest ``|W[o, i]| / max_j |W[o, j]|`` over output channels o (kernel included)."""
    flat = np.abs(weight.astype(np.float64)).reshape(weight.shape[0], weight.shape[1], -1).max(axis=2)
    rows = flat.max(axis=1, keepdims=True)
    return (flat / np.where(rows > 0, rows, 1.0)).max(axis=0)


def _normalised(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return np.clip(values / top if top > 0 else np.ones_like(values), MIN_SCALE, None)


def _clipped(scale: np.ndarray) -> np.ndarray:
    return np.clip(scale, MIN_SCALE, 1.0 / MIN_SCALE)


def balance_scales(ranges: np.ndarray, column_use: np.ndarray, strength: float) -> np.ndarray:
    """``(a / max a)^strength / (w / max w)^(1 - strength)``, clipped (see the module docstring)."""
    return _clipped(_normalised(ranges) ** strength / _normalised(column_use) ** (1.0 - strength))


def _scale_axis(tensor: gs.Constant, factor: np.ndarray, axis: int, name: str) -> gs.Constant:
    values = np.asarray(tensor.values, np.float64)
    shape = [1] * values.ndim
    shape[axis] = -1
    return gs.Constant(name, (values * factor.reshape(shape)).astype(np.asarray(tensor.values).dtype))


def _scale_outputs(node: gs.Node, factor: np.ndarray, bias_factor: np.ndarray) -> None:
    """Weight rows times ``factor``, bias times ``bias_factor`` (new constants)."""
    key = node.name or node.outputs[0].name
    node.inputs[1] = _scale_axis(node.inputs[1], factor, 0, f"{key}_weight_equalized")
    if len(node.inputs) > 2:
        node.inputs[2] = _scale_axis(node.inputs[2], bias_factor, 0, f"{key}_bias_equalized")


def apply_scales(chain: Chain, s1: np.ndarray, s2: np.ndarray | None = None) -> None:
    """Divide x1 by ``s1`` (and x2 by ``s2`` for a triple), keeping the float function (in place).

    Raises:
        ValueError: ``s2`` missing for a triple, or given for a pair.
    """
    if (chain.depthwise is None) != (s2 is None):
        raise ValueError("a triple needs s1 and s2, a pair only s1")
    _scale_outputs(chain.first, 1.0 / s1, 1.0 / s1)
    last = s1
    if chain.depthwise is not None and s2 is not None:
        _scale_outputs(chain.depthwise, s1 / s2, 1.0 / s2)
        last = s2
    key = chain.last.name or chain.last.outputs[0].name
    chain.last.inputs[1] = _scale_axis(chain.last.inputs[1], last, 1, f"{key}_weight_equalized")


def equalize(
    graph: gs.Graph, feeds: Iterable[Mapping[str, np.ndarray]], *, strength: float = 0.5
) -> Equalization:
    """Equalise the activation ranges of every chain of ``graph`` (in place; see the module docstring).

    Args:
        graph: the float model's graph (toposorted in place). Tensor and node names are kept;
            changed weights and biases become new constants (``*_equalized``).
        feeds: calibration input dicts to measure the ranges on.
        strength: ``alpha`` of the balance for tensors read by conv_B (1: equal activation
            ranges, 0: leave the activations, favour conv_B's weights).

    Raises:
        ValueError: ``strength`` outside [0, 1].
        GraphError: onnxruntime cannot run the model.
    """
    from edgesdk.graph.io import to_model

    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"equalisation strength must be in [0, 1], got {strength}")
    graph.toposort()
    chains = find_chains(graph)
    result = Equalization(graph)
    if not chains:
        return result
    tensors = [name for chain in chains for name in chain.tensors]
    ranges, result.images = channel_ranges(to_model(graph), tensors, feeds)
    for chain in chains:
        column_use = _column_use(np.asarray(chain.last.inputs[1].values))
        if chain.x2 is None:
            s1 = balance_scales(ranges[chain.x1.name], column_use, strength)
            apply_scales(chain, s1)
        else:
            s1 = _clipped(_normalised(ranges[chain.x1.name]))
            s2 = balance_scales(ranges[chain.x2.name], column_use, strength)
            apply_scales(chain, s1, s2)
            result.scales[chain.x2.name] = s2
        result.scales[chain.x1.name] = s1
        result.chains.append(chain)
    return result
