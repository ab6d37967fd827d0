"""Basic structural fixes: cleanup, initializer inputs, Identity/Dropout, output names."""

from __future__ import annotations

import logging

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.errors import GraphError
from edgesdk.graph._util import constant_value, node_label, producer, replace_uses, set_io
from edgesdk.graph.registry import FixContext, register_fix

log = logging.getLogger(__name__)


@register_fix("cleanup")
def cleanup(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Remove unused nodes and tensors, then toposort.

    Invariants: never renames or removes graph inputs/outputs; leaves a toposorted graph.
    """
    return graph.cleanup(remove_unused_graph_inputs=False).toposort()


@register_fix("drop-initializer-inputs")
def drop_initializer_inputs(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Stop listing initializers as graph inputs (old IR-3 style exports such as Ultra-Light face).

    The weights stay as initializers; only the duplicate graph-input entries go, so
    TensorRT and onnxruntime see them as constants and not as inputs to bind.

    Invariants: never removes a real (non-initializer) input; never changes values, nodes or
    outputs; keeps the order of the remaining inputs.
    """
    before = len(graph.inputs)
    graph.inputs = [t for t in graph.inputs if not isinstance(t, gs.Constant)]
    if before != len(graph.inputs):
        log.info("dropped %d initializer(s) listed as graph inputs", before - len(graph.inputs))
    return graph


def _is_passthrough(node: gs.Node) -> bool:
    """Identity, or a Dropout that is a no-op at inference (mask output unused)."""
    if node.op == "Identity":
        return len(node.inputs) == 1 and len(node.outputs) == 1
    if node.op != "Dropout" or not node.inputs or not node.outputs:
        return False
    if len(node.outputs) > 1 and node.outputs[1].name and node.outputs[1].outputs:
        return False  # the mask is consumed
    if bool(node.attrs.get("is_test", 1)) is False and "is_test" in node.attrs:
        return False  # opset < 7 training-mode Dropout
    if len(node.inputs) >= 3 and node.inputs[2].name:
        training = constant_value(node.inputs[2])
        if training is None or bool(np.asarray(training).reshape(-1)[0]):
            return False  # training_mode computed or true: not a no-op
    return True


@register_fix("strip-identity")
def strip_identity(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Remove Identity nodes and inference-mode Dropout.

    Consumers are rewired to the pass-through's input. When the pass-through's output is a
    graph output, its producer is made to write that output directly, so the output name is
    kept; where that is impossible (the input is a graph input, an initializer or another
    graph output) the node stays.

    Invariants: never renames, removes or reorders graph inputs/outputs; never changes values;
    Dropout with a consumed mask or a non-constant/true ``training_mode`` stays. Leaves the
    removed nodes' dangling tensors for ``cleanup``.
    """
    outputs = {id(t) for t in graph.outputs}
    inputs = {id(t) for t in graph.inputs}
    removed = 0
    for node in list(graph.nodes):
        if not _is_passthrough(node):
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if id(dst) not in outputs:
            replace_uses(dst, src)
        elif not _absorb_into_producer(src, dst, inputs, outputs):
            log.info(
                "kept %s: its output is a graph output fed directly by an input/constant", node_label(node)
            )
            continue
        node.inputs.clear()
        node.outputs.clear()
        removed += 1
    graph.nodes = [n for n in graph.nodes if n.inputs or n.outputs]
    log.info("strip-identity removed %d node(s)", removed)
    return graph


def _absorb_into_producer(src: gs.Tensor, dst: gs.Tensor, inputs: set[int], outputs: set[int]) -> bool:
    """Make ``src``'s producer write ``dst`` directly; True when done."""
    node = producer(src)
    if node is None or id(src) in inputs or id(src) in outputs or node.op == "Constant":
        return False
    replace_uses(src, dst)  # the other readers of src now read dst (same value)
    set_io(node.outputs, [dst if t is src else t for t in node.outputs])
    return True


@register_fix("rename-outputs")
def rename_outputs(graph: gs.Graph, ctx: FixContext, **names: str) -> gs.Graph:
    """Rename graph outputs: params ``{old_name: new_name}``.

    Invariants: renames only the listed outputs (and every reference to those tensors);
    never changes values, order or other names.

    Raises:
        GraphError: an old name is not a graph output, or a new name is already taken.
    """
    existing = {t.name for t in graph.outputs}
    taken = set(graph.tensors())
    for old, new in names.items():
        if old not in existing:
            raise GraphError(
                f"rename-outputs: {old!r} is not a graph output", hint=f"outputs are {sorted(existing)}"
            )
        if not isinstance(new, str) or not new:
            raise GraphError(f"rename-outputs: new name for {old!r} must be a non-empty string")
        if new != old and new in taken:
            raise GraphError(f"rename-outputs: cannot rename {old!r} to {new!r}: a tensor has that name")
    if len(set(names.values())) != len(names):
        raise GraphError(f"rename-outputs: two outputs would get the same name: {names}")
    for tensor in graph.outputs:
        if tensor.name in names:
            tensor.name = names[tensor.name]
    return graph
