"""Inspect a model: inputs/outputs, op histogram, parameters, FLOPs, opset, TensorRT lint.

FLOPs (counted on a shape-inferred copy; a node whose shapes are unknown counts 0 and is
listed in ``ModelSummary.uncounted``):

* ``flops`` = 2 x MACs of Conv, ConvTranspose, Gemm and MatMul (the convention behind
  "GFLOPs" in YOLO model cards; bias adds are not counted).
* ``other_flops``: 1 per output element for element-wise and activation ops (Add, Mul,
  Sigmoid, Relu, ...; Softmax and BatchNormalization count 4 and 2 per element), and
  kernel-size per output element for pooling. Shape/layout ops (Reshape, Concat, Slice,
  Transpose, Resize, ...) count 0.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.errors import GraphError
from edgesdk.graph._util import quiet_gs, static_shape
from edgesdk.graph.io import infer_shapes, to_graph

_ELEMENTWISE = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Sqrt": 1, "Exp": 1, "Log": 1, "Neg": 1, "Abs": 1,
    "Sigmoid": 1, "Relu": 1, "LeakyRelu": 1, "PRelu": 1, "Tanh": 1, "Clip": 1, "Elu": 1, "Selu": 1,
    "HardSigmoid": 1, "HardSwish": 1, "Softplus": 1, "Mish": 1, "Erf": 1, "Gelu": 1, "Floor": 1,
    "Ceil": 1, "Round": 1, "Max": 1, "Min": 1, "Sum": 1, "Mean": 1, "Reciprocal": 1,
    "BatchNormalization": 2, "InstanceNormalization": 4, "LayerNormalization": 4, "Softmax": 4,
}  # fmt: skip
_POOLS = {"MaxPool", "AveragePool", "LpPool"}


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, shape (ints, symbolic names or None) and dtype name."""

    name: str
    shape: list[int | str | None] | None
    dtype: str


@dataclass
class ModelSummary:
    """What ``edgesdk inspect`` shows.

    Attributes:
        inputs / outputs: graph I/O (initializers listed as inputs are left out of ``inputs``).
        ops: op type -> node count, most frequent first.
        nodes: number of nodes (top-level graph).
        params: number of values in floating-point initializers (weights and biases).
        initializers: number of initializers (all dtypes).
        flops: 2 x MACs of Conv/ConvTranspose/Gemm/MatMul for one forward pass.
        other_flops: element-wise/activation/pooling FLOPs (see module docs).
        uncounted: compute nodes skipped for lack of shapes.
        opset / ir_version / producer: model header.
        trt: the TensorRT version linted against (None: no lint).
        lint: the findings (see :mod:`edgesdk.graph.lint`).
        metadata: the model's ``metadata_props``.
        source: where the model came from (file, or recipe and file).
    """

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    ops: dict[str, int]
    nodes: int
    params: int
    initializers: int
    flops: int
    other_flops: int
    uncounted: list[str]
    opset: int
    ir_version: int
    producer: str
    trt: str | None = None
    lint: list[Any] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def errors(self) -> int:
        """Number of lint errors."""
        return sum(1 for f in self.lint if f.severity == "error")

    def to_json(self) -> dict[str, Any]:
        """Plain data (``--json``)."""
        data = asdict(self)
        data["lint"] = [f.to_json() for f in self.lint]
        data["gflops"] = round(self.flops / 1e9, 4)
        return data


def _info(tensor: gs.Tensor) -> TensorInfo:
    shape = (
        None
        if tensor.shape is None
        else [d if isinstance(d, (int, str)) or d is None else int(d) for d in tensor.shape]
    )
    dtype = np.dtype(tensor.dtype).name if tensor.dtype is not None else "unknown"
    return TensorInfo(tensor.name, shape, dtype)


def _conv_macs(node: gs.Node) -> int | None:
    out = static_shape(node.outputs[0])
    weight = static_shape(node.inputs[1]) if len(node.inputs) > 1 else None
    if out is None or weight is None:
        return None
    if node.op == "Conv":  # W: [Cout, Cin/group, k...]; each output element: Cin/group * prod(k) MACs
        return math.prod(out) * math.prod(weight[1:])
    inp = static_shape(node.inputs[0])  # ConvTranspose W: [Cin, Cout/group, k...]; per input element
    return None if inp is None else math.prod(inp) * math.prod(weight[1:])


def _matmul_macs(node: gs.Node) -> int | None:
    out = static_shape(node.outputs[0])
    a = static_shape(node.inputs[0])
    if out is None or a is None or not a:
        return None
    if node.op == "Gemm":
        k = a[0] if int(node.attrs.get("transA", 0)) else a[-1]
    else:
        k = a[-1]
    return math.prod(out) * k


def _pool_flops(node: gs.Node) -> int | None:
    out = static_shape(node.outputs[0])
    return None if out is None else math.prod(out) * math.prod(node.attrs.get("kernel_shape", [1]))


def count_flops(graph: gs.Graph) -> tuple[int, int, list[str]]:
    """``(flops, other_flops, uncounted_node_names)`` of a shape-inferred graph (see module docs)."""
    flops = other = 0
    uncounted: list[str] = []
    for node in graph.nodes:
        if node.op in ("Conv", "ConvTranspose"):
            macs = _conv_macs(node)
        elif node.op in ("Gemm", "MatMul"):
            macs = _matmul_macs(node)
        elif node.op in _POOLS or node.op in _ELEMENTWISE:
            if node.op in _POOLS:
                value = _pool_flops(node)
            else:
                out = static_shape(node.outputs[0]) if node.outputs else None
                value = None if out is None else math.prod(out) * _ELEMENTWISE[node.op]
            if value is None:
                uncounted.append(node.name or node.op)
            other += value or 0
            continue
        else:
            continue
        if macs is None:
            uncounted.append(node.name or node.op)
        flops += 2 * (macs or 0)
    return flops, other, uncounted


def _shaped_copy(graph: gs.Graph) -> gs.Graph:
    """A copy with constants folded (when onnxruntime is there) and shapes inferred, for counting."""
    with quiet_gs():
        shaped = graph.copy()
    shaped.inputs = [t for t in shaped.inputs if isinstance(t, gs.Variable)]
    try:
        infer_shapes(shaped, overwrite_outputs=False)
        with quiet_gs():
            shaped.toposort().fold_constants(partitioning="basic", error_ok=True).cleanup()
        infer_shapes(shaped, overwrite_outputs=False)
    except (GraphError, ImportError):
        pass  # count what has shapes; the rest is listed as uncounted
    return shaped


def _params(graph: gs.Graph) -> tuple[int, int]:
    """(float initializer values, initializer count) — Constant tensors, not Constant nodes."""
    values = count = 0
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Constant):
            count += 1
            if np.dtype(tensor.dtype).kind == "f":
                values += int(np.prod(tensor.shape))
    return values, count


def inspect_model(model: onnx.ModelProto, *, trt: str | None = None) -> ModelSummary:
    """Summarise ``model`` (not modified) and, with ``trt``, lint it for that TensorRT version.

    Args:
        model: the model.
        trt: "8.5", "8.6", "10.3" or None (no lint).

    Raises:
        GraphError: unknown TensorRT version.
        ModelFormatError: the graph cannot be imported.
    """
    from edgesdk.graph.lint import lint

    graph = to_graph(model)
    flops, other, uncounted = count_flops(_shaped_copy(graph))
    params, inits = _params(graph)
    histogram = Counter(n.op for n in graph.nodes)
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return ModelSummary(
        inputs=[_info(t) for t in graph.inputs if isinstance(t, gs.Variable)],
        outputs=[_info(t) for t in graph.outputs],
        ops=dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        nodes=len(graph.nodes),
        params=params,
        initializers=inits,
        flops=flops,
        other_flops=other,
        uncounted=uncounted,
        opset=int(graph.opset),
        ir_version=int(model.ir_version),
        producer=producer,
        trt=trt,
        lint=lint(graph, trt) if trt else [],
        metadata={p.key: p.value for p in model.metadata_props},
    )


def load_for_inspect(
    spec: str, *, model_dir: Path | None = None, model: Path | None = None
) -> tuple[onnx.ModelProto, str]:
    """The model named by ``spec``: an ONNX file path, or a recipe name/path (its source model).

    Recipes go through :func:`edgesdk.importers.import_model` (ONNX, darknet cfg+weights,
    torch), so a darknet recipe is inspected as the ONNX graph it imports to.

    Args:
        spec: ``path/to/model.onnx``, a recipe name (``yolov5n``) or a recipe ``.yaml`` path.
        model_dir: folder for the recipe's relative model paths (default: settings).
        model: a model file overriding the recipe's.

    Returns:
        ``(model, description of where it came from)``.

    Raises:
        ArtifactNotFound, ModelFormatError, RecipeError, MissingDependencyError.
    """
    from edgesdk.graph.io import load_model

    path = Path(spec)
    if path.suffix.lower() == ".onnx" or (path.is_file() and path.suffix.lower() not in (".yaml", ".yml")):
        return load_model(path), str(path)
    from edgesdk.importers import import_model, resolve_model_path
    from edgesdk.recipe import load_recipe

    recipe = load_recipe(spec)
    source = resolve_model_path(recipe, model_dir, model)
    return import_model(recipe, model_dir=model_dir, model=model), f"recipe {recipe.name}: {source}"


def inspect_source(
    spec: str, *, trt: str | None = None, model_dir: Path | None = None, model: Path | None = None
) -> ModelSummary:
    """:func:`load_for_inspect` then :func:`inspect_model` (what ``edgesdk inspect`` runs)."""
    loaded, source = load_for_inspect(spec, model_dir=model_dir, model=model)
    summary = inspect_model(loaded, trt=trt)
    summary.source = source
    return summary
