"""Lint: what a given TensorRT version's ONNX parser will refuse or warn about, without TensorRT.

``error``: the parser (or engine build) refuses it. ``warning``: it builds, but with a cast,
an optimization profile, a run-time shape computation or a documented restriction to check.
Every finding says what to do (often: which fix to list in the recipe).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.errors import GraphError
from edgesdk.graph import trt_support as ts
from edgesdk.graph._util import constant_value, quiet_gs, static_shape
from edgesdk.graph.io import infer_shapes, to_graph
from edgesdk.graph.lint_nodes import LintFinding, finding, node_findings

__all__ = ["LintFinding", "lint"]

_I32 = np.iinfo(np.int32)


def _model_findings(graph: gs.Graph, t: ts.TrtSupport) -> Iterator[LintFinding]:
    opset = int(graph.opset)
    if opset > t.opset_max:
        yield finding(
            "error",
            "opset",
            None,
            f"opset {opset} is above what TensorRT {t.version} parses (<= {t.opset_max})",
            f"re-export at opset {t.opset_max} or lower",
        )
    elif opset < t.opset_min:
        yield finding(
            "warning",
            "opset",
            None,
            f"opset {opset} is below TensorRT {t.version}'s documented range ({t.opset_min}..{t.opset_max})",
            "re-export at a newer opset",
        )
    init_inputs = [x.name for x in graph.inputs if isinstance(x, gs.Constant)]
    if init_inputs:
        yield finding(
            "warning",
            "initializer-input",
            None,
            f"{len(init_inputs)} initializer(s) are also listed as graph inputs (e.g. {init_inputs[0]!r})",
            "list drop-initializer-inputs first in the recipe's fixes",
        )
    for x in graph.inputs:
        if isinstance(x, gs.Variable) and static_shape(x) is None:
            yield finding(
                "warning",
                "dynamic-shape",
                None,
                f"input {x.name!r} has dynamic dimensions {x.shape}: the engine needs an optimization profile",
                "list static-shape in the recipe's fixes (input.shape pins N, C, H, W)",
            )
    yield from _dtype_findings(graph, t)


def _dtype_findings(graph: gs.Graph, t: ts.TrtSupport) -> Iterator[LintFinding]:
    io = [x for x in (*graph.inputs, *graph.outputs) if isinstance(x, gs.Variable)]
    for x in io:
        if x.dtype is not None and np.dtype(x.dtype) == np.int64 and not t.int64_native:
            yield finding(
                "warning",
                "int64",
                None,
                f"graph input/output {x.name!r} is int64; TensorRT {t.version} binds it as int32",
                "feed/read it as int32 on the device",
            )
        if x.dtype is not None and np.dtype(x.dtype) == np.float64:
            yield finding(
                "warning",
                "double",
                None,
                f"graph input/output {x.name!r} is double; TensorRT runs float32",
                "re-export with float32 I/O",
            )
    if t.int64_native:
        return
    int64 = [(n, v) for n, v in _constants(graph).items() if v.dtype == np.int64]
    if int64:
        names = [n for n, _ in int64]
        yield finding(
            "warning",
            "int64-weights",
            None,
            f"{len(int64)} int64 constant(s) (e.g. {names[0]!r}): TensorRT {t.version} casts them to int32 and warns",
            "list fold-constants and int64-to-int32 in the recipe's fixes",
        )
    wide = [n for n, v in int64 if v.size and (v.min() < _I32.min or v.max() > _I32.max)]
    if wide:
        yield finding(
            "warning",
            "int64-range",
            None,
            f"{len(wide)} int64 constant(s) exceed the int32 range (e.g. {wide[0]!r}); "
            "TensorRT clamps them to +-INT_MAX",
            "fine for Slice ends (INT64_MAX means 'to the end'); else re-export",
        )


def _constants(graph: gs.Graph) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for name, tensor in graph.tensors().items():
        if tensor.outputs:
            value = constant_value(tensor)
            if value is not None:
                found[name] = value
    return found


def _all_nodes(graph: gs.Graph) -> Iterator[gs.Node]:
    yield from graph.nodes
    for sub in graph.subgraphs(recursive=True):
        yield from sub.nodes


def lint(graph_or_model: Union[gs.Graph, onnx.ModelProto], trt: str = "8.5") -> list[LintFinding]:
    """Everything TensorRT ``trt`` will refuse (errors) or warn about (warnings), errors first.

    Args:
        graph_or_model: a GS graph (not modified) or an ONNX model.
        trt: "8.5", "8.6" or "10.3".

    Raises:
        GraphError: unknown TensorRT version.
    """
    table = ts.support(trt)
    if isinstance(graph_or_model, gs.Graph):
        with quiet_gs():
            graph = graph_or_model.copy()
    else:
        graph = to_graph(graph_or_model)
    try:
        infer_shapes(graph, overwrite_outputs=False)
    except GraphError:
        pass  # lint what we can without shapes
    findings = list(_model_findings(graph, table))
    for node in _all_nodes(graph):
        findings.extend(node_findings(node, table))
    return sorted(findings, key=lambda f: f.severity != "error")
