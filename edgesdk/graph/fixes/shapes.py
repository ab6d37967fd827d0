"""Shape fixes: pin a static input shape, infer shapes, fold constants."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import onnx_graphsurgeon as gs

from edgesdk.errors import GraphError
from edgesdk.graph._util import first_input, quiet_gs
from edgesdk.graph.io import infer_shapes as _infer
from edgesdk.graph.io import output_shapes_by_running
from edgesdk.graph.registry import FixContext, register_fix

log = logging.getLogger(__name__)


@register_fix("static-shape")
def static_shape(
    graph: gs.Graph,
    ctx: FixContext,
    shape: Sequence[int] | None = None,
    input: str | None = None,
    force: bool = False,
) -> gs.Graph:
    """Pin the input to a static shape (N, C, H, W) and re-infer every downstream shape.

    Args:
        graph: the graph (edited in place).
        ctx: ``ctx.input_shape`` / ``ctx.input_name`` give the shape and the input.
        shape: overrides ``ctx.input_shape``.
        input: overrides ``ctx.input_name`` (default: the first non-initializer input).
        force: allow changing a dimension the model already fixes to another value.

    Output shapes that ONNX shape inference cannot resolve (e.g. Shape→Gather→Concat→Reshape
    heads) are taken from one onnxruntime run on zeros; intermediate tensors there stay
    unknown until ``fold-constants`` + ``infer-shapes``.

    Invariants: changes only the pinned input's shape and the shapes of tensors downstream
    (graph outputs included); never renames anything and never touches nodes or values.

    Raises:
        GraphError: no shape given; rank mismatch; a fixed dimension would change (without
            ``force``); or shape inference fails with the pinned shape.
    """
    dims = list(shape) if shape is not None else (list(ctx.input_shape) if ctx.input_shape else None)
    if not dims:
        raise GraphError("static-shape needs a shape", hint="set the recipe's input.shape (N, C, H, W)")
    if any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in dims):
        raise GraphError(f"static-shape: {dims} is not a list of positive integers")
    tensor = first_input(graph, input if input is not None else ctx.input_name)
    old = list(tensor.shape) if tensor.shape is not None else None
    if old is not None:
        if len(old) != len(dims):
            raise GraphError(
                f"static-shape: input {tensor.name!r} has rank {len(old)} ({old}), the recipe gives {dims}",
                hint="fix the recipe's input.shape",
            )
        clash = [
            (i, o, d) for i, (o, d) in enumerate(zip(old, dims)) if isinstance(o, int) and o > 0 and o != d
        ]
        if clash and not force:
            raise GraphError(
                f"static-shape: input {tensor.name!r} is fixed at {old} but the recipe asks for {dims}",
                hint="use the model exported for that size (or a dynamic one), or pass {static-shape: {force: true}}",
            )
    tensor.shape = dims
    _infer(graph)
    if _dynamic_outputs(graph):
        _shapes_from_a_run(graph)
    return graph


def _dynamic_outputs(graph: gs.Graph) -> list[str]:
    return [t.name for t in graph.outputs if t.shape is None or any(not isinstance(d, int) for d in t.shape)]


def _shapes_from_a_run(graph: gs.Graph) -> None:
    """ONNX inference could not resolve some outputs: take their shapes from one run on zeros."""
    try:
        found = output_shapes_by_running(graph)
    except GraphError as err:
        log.warning("outputs %s keep dynamic shapes (%s)", _dynamic_outputs(graph), err)
        return
    for tensor in graph.outputs:
        if tensor.name in found:
            tensor.shape = found[tensor.name]


@register_fix("infer-shapes")
def infer_shapes(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Run ONNX shape inference and record every tensor's shape and dtype in the graph.

    Invariants: never touches nodes, values or names; input shapes stay as they are; output
    shapes are replaced only where inference finds one.
    """
    return _infer(graph)


@register_fix("fold-constants")
def fold_constants(
    graph: gs.Graph, ctx: FixContext, size_threshold: int | None = None, fold_shapes: bool = True
) -> gs.Graph:
    """Pre-compute every subgraph that depends only on constants (with onnxruntime), then clean up.

    Shapes are inferred first so that ``Shape`` of a statically shaped tensor folds too
    (this is what turns yolov5's Shape→Slice→Concat Resize sizes into a constant).

    Args:
        graph: the graph (edited in place).
        ctx: unused.
        size_threshold: do not fold results larger than this many bytes (default: no limit).
        fold_shapes: fold ``Shape`` (and Shape→Gather/Slice) of static tensors.

    Invariants: never renames, removes or reorders graph inputs/outputs; values change only
    by float rounding of the folded arithmetic; leaves a cleaned-up, toposorted graph.
    """
    if fold_shapes:
        try:
            _infer(graph)
        except GraphError as err:
            log.info("fold-constants: shape inference failed (%s); folding without shapes", err)
    with quiet_gs():
        graph.toposort()
        graph.fold_constants(
            fold_shapes=fold_shapes, partitioning="basic", error_ok=True, size_threshold=size_threshold
        )
        graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return graph
