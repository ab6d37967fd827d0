"""Apply a slimming plan: slice initializers, fix attributes, re-infer shapes, check.

Invariants: graph inputs and outputs keep their names, dtypes and shapes (a plan that
would change an output shape is refused); every other tensor keeps its name; nodes that
lose no channel are untouched. At ratio 0 (every group keeps everything) the model
computes exactly what it computed before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.errors import PruneError
from edgesdk.graph._util import quiet_gs
from edgesdk.graph.io import infer_shapes, to_graph, to_model
from edgesdk.slim.groups import ChannelAnalysis, analyze, prepare
from edgesdk.slim.handlers import NodeMasks, handler_for
from edgesdk.slim.plan import SlimPlan, model_sha256

log = logging.getLogger(__name__)


def apply_masks(
    graph: gs.Graph, analysis: ChannelAnalysis, kept: Mapping[int, Sequence[int] | np.ndarray]
) -> gs.Graph:
    """Remove every channel not in ``kept`` from ``graph`` (in place; returns it).

    Args:
        graph: the prepared graph ``analysis`` was computed on.
        analysis: its channel groups.
        kept: group id -> group channels to keep (groups not listed keep everything).

    Raises:
        PruneError: a node that loses channels has no slicing handler, a kept list is out
            of range, or the result changes a graph output's shape.
    """
    _check_kept(analysis, kept)
    masks = analysis.keep_masks(kept)
    outputs_before = {t.name: _shape(t) for t in graph.outputs}
    opset = int(graph.opset)
    for node in list(graph.nodes):
        node_masks = NodeMasks(
            [masks.get(t.name) for t in node.inputs], [masks.get(t.name) for t in node.outputs], opset
        )
        if all(m is None for m in node_masks.inputs + node_masks.outputs):
            continue
        handler_for(node)(node, node_masks)
    io = {id(t) for t in graph.inputs} | {id(t) for t in graph.outputs}
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and id(tensor) not in io:
            tensor.shape = None  # re-inferred below from the sliced constants
    with quiet_gs():
        graph.cleanup()
    infer_shapes(graph, overwrite_outputs=False)
    _check_outputs(graph, outputs_before)
    return graph


def _shape(tensor: gs.Tensor) -> list[object] | None:
    return None if tensor.shape is None else list(tensor.shape)


def _check_kept(analysis: ChannelAnalysis, kept: Mapping[int, Sequence[int] | np.ndarray]) -> None:
    for gid, channels in kept.items():
        if not 0 <= gid < len(analysis.groups):
            raise PruneError(f"the plan names channel group {gid}, but the model has {len(analysis.groups)}")
        group = analysis.groups[gid]
        values = np.asarray(channels, dtype=np.int64)
        if len(values) == 0 or values.min() < 0 or values.max() >= group.size:
            raise PruneError(
                f"group {gid} ({', '.join(group.sources) or 'no source'}): kept channels must be a "
                f"non-empty subset of 0..{group.size - 1}",
                hint="every group keeps at least one channel; edit the plan's 'kept' lists",
            )
        if len(values) < group.size and not group.prunable:
            raise PruneError(
                f"group {gid} ({', '.join(group.sources) or 'no source'}) cannot be pruned: "
                f"{'; '.join(group.reasons) or 'it has one channel'}",
                hint="keep all its channels (remove it from the plan)",
            )


def _check_outputs(graph: gs.Graph, before: dict[str, list[object] | None]) -> None:
    from edgesdk.graph.io import output_shapes_by_running

    after = {t.name: _shape(t) for t in graph.outputs}
    if after == before:
        return
    run = output_shapes_by_running(graph)  # inference may not see through every head
    for name, shape in before.items():
        if shape is not None and run.get(name) != shape:
            raise PruneError(
                f"pruning changed the shape of graph output {name!r}: {shape} -> {run.get(name)}",
                hint="this is a bug in the coupling rules (outputs are pinned); please report it",
            )


def finish(graph: gs.Graph, like: onnx.ModelProto) -> onnx.ModelProto:
    """Export the pruned ``graph`` with ``like``'s header and run ``onnx.checker`` on it.

    Raises:
        PruneError: the checker rejects the pruned model.
    """
    model = to_model(graph, like=like)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise PruneError(
            f"the pruned model fails onnx.checker: {str(err).splitlines()[0]}",
            hint="this is a bug in a slicing handler; please report it with the model and the plan",
        ) from err
    return model


Reconstructor = Callable[[gs.Graph, ChannelAnalysis, Mapping[int, Sequence[int]]], None]
"""Updates consumer weights of the pruned ``graph`` in place (data-driven methods)."""


def _check_plan(analysis: ChannelAnalysis, plan: SlimPlan) -> None:
    for entry in plan.groups:
        if not 0 <= entry.id < len(analysis.groups):
            raise PruneError(
                f"the plan names channel group {entry.id}, but the model has {len(analysis.groups)}"
            )
        group = analysis.groups[entry.id]
        if group.size != entry.size or group.sources != entry.sources:
            raise PruneError(
                f"the plan does not match this model: group {entry.id} is {group.size} channel(s) from "
                f"{group.sources[:2]}, the plan says {entry.size} from {entry.sources[:2]}",
                hint="make the plan from the same model (same recipe, fixes and --model)",
            )


def apply_plan(
    model: onnx.ModelProto, plan: SlimPlan, *, reconstruct: Reconstructor | None = None
) -> onnx.ModelProto:
    """The model with the plan's channels removed (``model`` is not modified).

    Args:
        model: the model the plan was made for.
        plan: from :func:`edgesdk.slim.plan.make_plan` (or its JSON, reviewed/edited).
        reconstruct: optional step that refits consumer weights after slicing.

    Returns:
        A checked model (``onnx.checker``) with unchanged graph inputs and outputs.

    Raises:
        PruneError: the plan does not fit the model, or pruning cannot be done safely.
    """
    if plan.model_sha256 != model_sha256(model):
        log.info("the plan was made for another serialization of the model; checking its groups")
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    _check_plan(analysis, plan)
    kept = plan.kept()
    apply_masks(graph, analysis, kept)
    removed = [b for b in plan.blocks if b.get("removed")]
    if removed:
        from edgesdk.slim.blocks import remove_blocks

        remove_blocks(graph, [b["add"] for b in removed], {b["add"]: b["shortcut"] for b in removed})
        with quiet_gs():
            graph.cleanup()
    if reconstruct is not None and kept:
        reconstruct(graph, analysis, kept)
    return finish(graph, model)
