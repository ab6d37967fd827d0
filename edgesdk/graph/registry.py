"""The registry of named graph fixes that recipes list.

A fix is a small function ``fix(graph, ctx, **params) -> graph`` over an
onnx-graphsurgeon ``Graph``: it edits the graph in place and returns it (GS's
convention). Each fix's docstring states its invariants. Fixes register themselves
with :func:`register_fix` in the modules of :mod:`edgesdk.graph.fixes`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from edgesdk.errors import EdgeSdkInternalError, GraphError

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs


@dataclass(frozen=True)
class FixContext:
    """What a fix may know besides the graph.

    Attributes:
        input_shape: the recipe's static input shape (N, C, H, W), or None.
        input_name: the input to pin, or None for the first graph input.
        postprocess: the recipe's resolved post-processing parameters (decoder name and its
            parameters, thresholds), for fixes that append decoding/NMS.
        extra: anything else a caller passes along.
    """

    input_shape: tuple[int, int, int, int] | None = None
    input_name: str | None = None
    postprocess: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


FixFn = Callable[..., "gs.Graph"]

_FIXES: dict[str, FixFn] = {}
_LOADED = False


def register_fix(name: str) -> Callable[[FixFn], FixFn]:
    """Register ``fn`` under ``name``; registering a name twice is a bug."""

    def wrap(fn: FixFn) -> FixFn:
        if name in _FIXES:
            raise EdgeSdkInternalError(f"graph fix {name!r} registered twice")
        _FIXES[name] = fn
        return fn

    return wrap


def _load() -> None:
    global _LOADED
    if not _LOADED:
        importlib.import_module("edgesdk.graph.fixes")
        _LOADED = True


def fix_names() -> list[str]:
    """Every registered fix name, sorted."""
    _load()
    return sorted(_FIXES)


def get_fix(name: str) -> FixFn:
    """The fix registered as ``name``.

    Raises:
        GraphError: unknown name, listing the known ones.
    """
    _load()
    try:
        return _FIXES[name]
    except KeyError:
        raise GraphError(
            f"unknown graph fix {name!r}", hint=f"known fixes: {', '.join(sorted(_FIXES))}"
        ) from None


def fix_doc(name: str) -> str:
    """First line of a fix's docstring (for listings)."""
    doc = (get_fix(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
