"""Basic structural fixes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgesdk.graph.registry import FixContext, register_fix

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs


@register_fix("cleanup")
def cleanup(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
    """Remove unused nodes and tensors, then toposort.

    Invariants: never renames or removes graph inputs/outputs; leaves a toposorted graph.
    """
    return graph.cleanup(remove_unused_graph_inputs=False).toposort()
