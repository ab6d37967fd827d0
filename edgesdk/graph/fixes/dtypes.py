"""int64 → int32 for constants whose every consumer accepts int32 (per the ONNX op schemas)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, producer
from edgesdk.graph.registry import FixContext, register_fix

log = logging.getLogger(__name__)

_I32 = np.iinfo(np.int32)
_INT32 = "tensor(int32)"


def _schema(node: gs.Node, opset: int) -> Any:
    domain = "" if node.domain in (None, "", "ai.onnx") else str(node.domain)
    try:
        return onnx.defs.get_schema(node.op, opset, domain)
    except onnx.defs.SchemaError:
        return None


def _formal(params: list[Any], index: int) -> Any:
    if index < len(params):
        return params[index]
    if params and params[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
        return params[-1]
    return None


def _slot_ok(node: gs.Node, index: int, schema: Any, candidates: dict[str, np.ndarray]) -> bool:
    """Whether input ``index`` of ``node`` may become int32 (alone, or with its type-mates)."""
    formal = _formal(list(schema.inputs), index)
    if formal is None:
        return False
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    param = formal.type_str
    if param not in allowed:
        return param == _INT32
    if _INT32 not in allowed[param]:
        return False
    if any(out.type_str == param for out in schema.outputs):
        return False  # the output dtype would change too
    for j, other in enumerate(node.inputs):
        mate = _formal(list(schema.inputs), j)
        if j == index or mate is None or mate.type_str != param or other.name == "":
            continue
        if other.name not in candidates:
            return False  # a type-mate stays int64: the node would mix int32 and int64
    return True


def _candidates(graph: gs.Graph, protected: set[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for name, tensor in graph.tensors().items():
        if name in protected or not tensor.outputs:
            continue
        value = constant_value(tensor)
        if value is None or value.dtype != np.int64:
            continue
        if value.size and (value.min() < _I32.min or value.max() > _I32.max):
            continue  # "where values fit": never clamp
        found[name] = value
    return found


def _subgraph_names(graph: gs.Graph) -> set[str]:
    names: set[str] = set()
    for sub in graph.subgraphs(recursive=True):
        for node in sub.nodes:
            names.update(t.name for t in node.inputs)
    return names


def _prune(graph: gs.Graph, candidates: dict[str, np.ndarray]) -> None:
    opset = int(graph.opset)
    tensors = graph.tensors()
    changed = True
    while changed:
        changed = False
        for name in list(candidates):
            tensor = tensors[name]
            for node in tensor.outputs:
                schema = _schema(node, opset)
                slots = [i for i, t in enumerate(node.inputs) if t is tensor]
                if schema is None or not all(_slot_ok(node, i, schema, candidates) for i in slots):
                    del candidates[name]
                    changed = True
                    break


def _convert(tensor: gs.Tensor, value: np.ndarray) -> None:
    new = value.astype(np.int32)
    if isinstance(tensor, gs.Constant):
        tensor.values = new
        return
    node = producer(tensor)
    assert node is not None and node.op == "Constant"  # guaranteed by constant_value()
    for key in ("value_int", "value_ints"):
        node.attrs.pop(key, None)
    node.attrs["value"] = gs.Constant(f"{tensor.name}_value", new)
    tensor.dtype = np.int32


@register_fix("int64-to-int32")
def int64_to_int32(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Store int64 constants as int32 where every consumer accepts int32 and the values fit.

    TensorRT 8.x casts int64 weights down (with a warning); this does it ahead of time where
    the ONNX spec allows it. A constant qualifies only if, for each consumer, the input's
    type constraint admits ``tensor(int32)``, the constraint does not also type an output
    (so no output dtype changes), and every other input sharing that constraint converts
    too (e.g. all of Slice's starts/ends/axes/steps, or none).

    Invariants: never changes graph input/output dtypes, never changes op types or
    attributes other than a ``Constant`` node's value, never clamps (out-of-range constants
    stay int64); values are unchanged.
    """
    protected = {t.name for t in (*graph.inputs, *graph.outputs)} | _subgraph_names(graph)
    candidates = _candidates(graph, protected)
    _prune(graph, candidates)
    tensors = graph.tensors()
    for name, value in candidates.items():
        _convert(tensors[name], value)
    log.info("int64-to-int32 converted %d constant(s)", len(candidates))
    return graph
