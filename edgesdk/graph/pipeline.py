"""Apply a recipe's list of named fixes to a model."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from typing import Any

import onnx

from edgesdk.errors import EdgeSdkError, GraphError
from edgesdk.graph.io import to_graph, to_model
from edgesdk.graph.registry import FixContext, get_fix

log = logging.getLogger(__name__)


def apply_fixes(
    model: onnx.ModelProto, fixes: Sequence[tuple[str, dict[str, Any]]], ctx: FixContext
) -> tuple[onnx.ModelProto, list[str]]:
    """Run ``fixes`` in order over ``model`` and export the result.

    The input model is not modified. The result keeps the original's opset imports, IR
    version and ``metadata_props`` (see :func:`edgesdk.graph.io.to_model`).

    Args:
        model: the imported model.
        fixes: ``(name, params)`` pairs, e.g. ``Recipe.fix_list()``.
        ctx: what the fixes may know (input shape, post-processing parameters).

    Returns:
        ``(fixed_model, names_applied)``.

    Raises:
        GraphError: unknown fix name, or a fix failed; the message names the fix (and the node
            when the fix could tell).
    """
    resolved = [(name, get_fix(name), dict(params or {})) for name, params in fixes]
    for name, fn, params in resolved:
        _check_params(name, fn, params)
    graph = to_graph(model)
    applied: list[str] = []
    for name, fn, params in resolved:
        started = time.perf_counter()
        try:
            result = fn(graph, ctx, **params)
        except EdgeSdkError as err:
            if str(err).startswith(f"graph fix {name!r}"):
                raise
            raise GraphError(f"graph fix {name!r}: {err}", hint=err.hint) from err
        except Exception as err:
            raise _wrap(name, err) from err
        if result is None:
            raise GraphError(f"graph fix {name!r} returned no graph (a bug in the fix)")
        graph = result
        applied.append(name)
        log.info("fix %s: %.3f s, %d nodes", name, time.perf_counter() - started, len(graph.nodes))
    return to_model(graph, like=model), applied


def _check_params(name: str, fn: Any, params: dict[str, Any]) -> None:
    try:
        inspect.signature(fn).bind(None, None, **params)
    except TypeError as err:
        raise GraphError(
            f"graph fix {name!r}: bad parameters {sorted(params)}: {err}",
            hint=f"`edgesdk fixes` describes {name!r}; fix the recipe's `fixes` entry",
        ) from None


def _wrap(name: str, err: Exception) -> GraphError:
    node = getattr(err, "node", None)
    where = f" on node {node!r}" if node else ""
    return GraphError(
        f"graph fix {name!r} failed{where}: {type(err).__name__}: {err}",
        hint=f"remove {name!r} from the recipe's `fixes` to export without it, and report the model",
    )
