"""In-graph statistics: copies of a model whose outputs are small per-tensor summaries.

Exposing every calibration tensor as a graph output (:func:`edgesdk.quant.stats.activation_model`)
makes onnxruntime copy ~30 M floats per image out to numpy, reorder them out of its blocked
NCHWc layout and then the host has to read them again. The models built here compute the
statistics *inside* the graph instead, next to the data:

- :func:`range_model` (pass 1): per float32 tensor, ``ReduceMin``, ``ReduceMax``, ``ReduceSum``
  and ``Size`` -> four scalars. ``ReduceSum`` is there to detect NaN/inf: IEEE sums propagate
  them whatever the order, while onnxruntime's ``ReduceMin``/``ReduceMax`` may skip a NaN.
  A non-finite sum (NaN, inf, or a finite overflow) sends that tensor to the exact host path.
- :func:`index_model` (pass 2): per float32 tensor with a known ``amax``, its bin indices
  ``Abs(Cast<int16>(x * float32(bins / amax)))`` -- the float32 product and truncation
  :func:`edgesdk.quant.histogram.accumulate` does on the host, so the bins are the same --
  half the bytes of the floats; only the counting is left to the host
  (:class:`~edgesdk.quant.histogram.IndexCounter`). onnxruntime's
  ``ScatterElements(reduction="add")`` could count in the graph too, but its CPU kernel is
  far slower (measured: 337 ms/image for yolox-nano, against ~10 ms of host counting).

Cost (2 cores, 2 images at once): exposing anything blocks onnxruntime's Conv+activation
fusions and adds NCHWc reorders; yolox-nano runs in 15 ms/image plain, ~42 ms with either
probe (ReduceMax alone: 33 ms), against ~65 ms with every tensor copied out whole.

Tensors that are not float32 are left to the host path (raw outputs); so are models whose
default-domain opset is below :data:`MIN_OPSET`. Pure graph editing:
onnx-graphsurgeon here, protos only through :mod:`edgesdk.graph.io`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgesdk.errors import CalibrationError

if TYPE_CHECKING:
    import onnx
    import onnx_graphsurgeon as gs

__all__ = ["MIN_OPSET", "PREFIX", "RangeOutputs", "in_graph_tensors", "index_model", "range_model"]

MIN_OPSET = 8
"""Lowest default-domain opset the probes are built for (``Mul`` with broadcasting)."""

PREFIX = "__edgesdk_cal"
"""Prefix of every tensor and node the probes add."""


@dataclass(frozen=True)
class RangeOutputs:
    """Output names of one tensor's pass-1 probe (scalars: min, max, sum as float32; size int64)."""

    lo: str
    hi: str
    total: str
    size: str


def in_graph_tensors(graph: gs.Graph, names: Sequence[str]) -> list[str]:
    """The subset of ``names`` the probes can summarise in the graph (float32 tensors).

    Empty when the graph's opset is below :data:`MIN_OPSET`.
    """
    if int(graph.opset) < MIN_OPSET:
        return []
    tensors = graph.tensors()
    return [n for n in names if n in tensors and tensors[n].dtype is not None and _is_f32(tensors[n].dtype)]


def _is_f32(dtype: object) -> bool:
    try:
        return np.dtype(dtype) == np.float32  # type: ignore[call-overload]
    except TypeError:
        return False


def _probe_graph(model: onnx.ModelProto) -> tuple[gs.Graph, dict[str, gs.Tensor]]:
    from edgesdk.graph.io import to_graph

    graph = to_graph(model)
    graph.outputs = []
    return graph, graph.tensors()


def _tensor(tensors: Mapping[str, gs.Tensor], name: str) -> gs.Tensor:
    tensor = tensors.get(name)
    if tensor is None or tensor.dtype is None:
        raise CalibrationError(f"tensor {name!r} is not a typed tensor of the model; cannot calibrate it")
    return tensor


def _raw_outputs(graph: gs.Graph, tensors: Mapping[str, gs.Tensor], raw: Sequence[str]) -> None:
    inputs = {t.name for t in graph.inputs}
    for name in raw:
        tensor = _tensor(tensors, name)
        if name not in inputs and tensor not in graph.outputs:
            graph.outputs.append(tensor)


def range_model(
    model: onnx.ModelProto, names: Sequence[str], raw: Sequence[str] = ()
) -> tuple[onnx.ModelProto, dict[str, RangeOutputs]]:
    """A copy of ``model`` whose outputs are pass-1 scalars for ``names`` and the tensors ``raw``.

    Args:
        model: the model (not modified).
        names: float32 tensors to summarise in the graph (see :func:`in_graph_tensors`).
        raw: tensors to expose as they are (graph inputs among them are skipped: the caller
            has the feed).

    Returns:
        The model, and per name in ``names`` its :class:`RangeOutputs`.

    Raises:
        CalibrationError: a name is not a typed tensor of the model.
    """
    import onnx_graphsurgeon as gs

    from edgesdk.graph.io import to_model

    graph, tensors = _probe_graph(model)
    probes: dict[str, RangeOutputs] = {}
    for i, name in enumerate(names):
        source = _tensor(tensors, name)
        out = RangeOutputs(*(f"{PREFIX}_{i}_{kind}" for kind in ("min", "max", "sum", "size")))
        for op, output in (("ReduceMin", out.lo), ("ReduceMax", out.hi), ("ReduceSum", out.total)):
            scalar = gs.Variable(output, np.float32, [])
            graph.nodes.append(gs.Node(op, output, {"keepdims": 0}, [source], [scalar]))
            graph.outputs.append(scalar)
        size = gs.Variable(out.size, np.int64, [])
        graph.nodes.append(gs.Node("Size", out.size, {}, [source], [size]))
        graph.outputs.append(size)
        probes[name] = out
    _raw_outputs(graph, tensors, raw)
    return to_model(graph, like=model), probes


def index_model(
    model: onnx.ModelProto,
    scales: Mapping[str, np.float32],
    raw: Sequence[str] = (),
    unleak: Mapping[str, tuple[str, float]] | None = None,
) -> tuple[onnx.ModelProto, dict[str, str]]:
    """A copy of ``model`` whose outputs are int16 bin indices for ``scales`` and the tensors ``raw``.

    For a tensor ``x`` with scale ``k = float32(bins / amax)``, the index output is
    ``Abs(Cast<int16>(x * k))`` (same shape as ``x``): a float32 product, truncation toward
    zero, then the absolute value of the 2-byte integer, so ``index = floor(|x| * k)`` --
    exactly the host's :func:`~edgesdk.quant.histogram.accumulate`. ``|x| <= amax`` keeps
    ``index <= bins`` (bins <= 16384 fits int16 with room for rounding).

    Args:
        model: the model (not modified).
        scales: float32 tensor name -> ``float32(bins / amax)``.
        raw: tensors to expose as they are (graph inputs among them are skipped).
        unleak: name -> (``y``, ``alpha``) for names of ``scales`` read only by a
            ``LeakyRelu(alpha)`` whose output is ``y``: their indices are computed from
            ``LeakyRelu(y, 1/alpha)`` (the name itself is not read, so onnxruntime can still
            fuse its producer with the activation; see :mod:`edgesdk.quant.derive`).

    Returns:
        The model, and per name in ``scales`` the name of its index output.

    Raises:
        CalibrationError: a name is not a typed tensor of the model.
    """
    import onnx
    import onnx_graphsurgeon as gs

    from edgesdk.graph.io import to_model

    graph, tensors = _probe_graph(model)
    outputs: dict[str, str] = {}
    unleak = unleak or {}
    for i, (name, scale) in enumerate(scales.items()):
        stem = f"{PREFIX}_{i}"
        if name in unleak:
            _tensor(tensors, name)
            leaked, alpha = unleak[name]
            source = gs.Variable(f"{stem}_unleaked", np.float32)
            graph.nodes.append(
                gs.Node(
                    "LeakyRelu",
                    f"{stem}_unleak",
                    {"alpha": 1.0 / alpha},
                    [_tensor(tensors, leaked)],
                    [source],
                )
            )
        else:
            source = _tensor(tensors, name)
        scaled = gs.Variable(f"{stem}_scaled", np.float32)
        signed = gs.Variable(f"{stem}_signed", np.int16)
        index = gs.Variable(f"{stem}_index", np.int16)
        factor = gs.Constant(f"{stem}_k", np.array(scale, np.float32))
        graph.nodes += [
            gs.Node("Mul", f"{stem}_mul", {}, [source, factor], [scaled]),
            gs.Node("Cast", f"{stem}_cast", {"to": onnx.TensorProto.INT16}, [scaled], [signed]),
            gs.Node("Abs", f"{stem}_abs", {}, [signed], [index]),
        ]
        graph.outputs.append(index)
        outputs[name] = index.name
    _raw_outputs(graph, tensors, raw)
    return to_model(graph, like=model), outputs
