"""Small helpers over onnx-graphsurgeon graphs shared by the fixes, the lint and inspect."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.logger import G_LOGGER

from edgesdk.errors import GraphError


def quiet_gs() -> AbstractContextManager[Any]:
    """Silence onnx-graphsurgeon's logger (it prints to stdout, which ``--json`` output owns).

    The previous severity is restored on exit.
    """
    return G_LOGGER.suppress()  # type: ignore[no-any-return]


def node_label(node: gs.Node) -> str:
    """``'name' (Op)`` for messages; unnamed nodes show their first output."""
    name = node.name or (node.outputs[0].name if node.outputs else "?")
    return f"{name!r} ({node.op})"


def producer(tensor: gs.Tensor) -> gs.Node | None:
    """The node producing ``tensor`` (None for graph inputs and constants)."""
    return tensor.inputs[0] if isinstance(tensor, gs.Variable) and tensor.inputs else None


def constant_value(tensor: gs.Tensor | None) -> np.ndarray | None:
    """The value of ``tensor`` if it is known without running the graph.

    Known values: ``gs.Constant`` tensors (initializers), outputs of ``Constant`` nodes, and
    ``Identity`` of either.
    Empty optional inputs (name ``""``) and everything computed return None.
    """
    if tensor is None:
        return None
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    node = producer(tensor)
    if node is not None and node.op == "Identity" and node.inputs:
        return constant_value(node.inputs[0])
    if node is None or node.op != "Constant":
        return None
    return _constant_node_value(node)


def _constant_node_value(node: gs.Node) -> np.ndarray | None:
    attrs = node.attrs
    if "value" in attrs and isinstance(attrs["value"], gs.Constant):
        return np.asarray(attrs["value"].values)
    scalars: dict[str, Any] = {
        "value_float": np.float32,
        "value_floats": np.float32,
        "value_int": np.int64,
        "value_ints": np.int64,
    }
    for key, dtype in scalars.items():
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    return None


def is_known(tensor: gs.Tensor | None) -> bool:
    """Whether ``tensor``'s value is known at export time (see :func:`constant_value`)."""
    return constant_value(tensor) is not None


def is_empty_input(tensor: gs.Tensor | None) -> bool:
    """An omitted optional input (GS represents it as a Variable named ``""``)."""
    return tensor is None or (isinstance(tensor, gs.Variable) and tensor.name == "")


def set_io(items: Any, values: list[gs.Tensor]) -> None:
    """Replace a node's ``inputs`` or ``outputs`` list (GS's synced lists have no slice assignment)."""
    items.clear()
    items.extend(values)


def replace_uses(old: gs.Tensor, new: gs.Tensor) -> None:
    """Make every consumer of ``old`` read ``new`` instead (graph outputs are not touched)."""
    for consumer in list(old.outputs):
        set_io(consumer.inputs, [new if t is old else t for t in consumer.inputs])


def unique_name(graph: gs.Graph, base: str) -> str:
    """``base`` if no tensor or node uses it yet, else ``base_1``, ``base_2``, ..."""
    taken = set(graph.tensors()) | {n.name for n in graph.nodes}
    if base not in taken:
        return base
    index = 1
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"


def static_shape(tensor: gs.Tensor) -> tuple[int, ...] | None:
    """The tensor's shape if every dimension is a known non-negative integer."""
    shape = tensor.shape
    if shape is None:
        return None
    dims = tuple(shape)
    if all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in dims):
        return tuple(int(d) for d in dims)
    return None


def first_input(graph: gs.Graph, name: str | None) -> gs.Variable:
    """The graph input called ``name`` (or the first real input when None).

    Raises:
        GraphError: no such input; lists the graph's inputs.
    """
    real = [t for t in graph.inputs if isinstance(t, gs.Variable)]
    if name is None:
        if not real:
            raise GraphError("the graph has no (non-initializer) input")
        return real[0]
    for tensor in real:
        if tensor.name == name:
            return tensor
    raise GraphError(
        f"the graph has no input named {name!r}",
        hint=f"inputs are {[t.name for t in real]}; fix the recipe's input.name",
    )
