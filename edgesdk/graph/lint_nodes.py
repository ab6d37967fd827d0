"""Per-node lint checks: op support per TensorRT version and the documented op restrictions.

Checks are registered per op type with :func:`_check` (dispatch is a dict lookup); the
model-level checks and the :func:`edgesdk.graph.lint.lint` entry point live in ``lint.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.graph import trt_support as ts
from edgesdk.graph._util import constant_value, is_empty_input, is_known, static_shape


@dataclass(frozen=True)
class LintFinding:
    """One thing TensorRT will refuse (error) or warn about (warning).

    Attributes:
        severity: "error" or "warning".
        rule: short id, e.g. "unsupported-op", "resize-mode", "dynamic-resize", "int64-weights".
        node: node name ("" for model-level findings).
        op: op type ("" for model-level findings).
        message: what is wrong, naming the TensorRT version.
        fix: what to do about it.
    """

    severity: str
    rule: str
    node: str
    op: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        """Plain data."""
        return asdict(self)


Check = Callable[[gs.Node, ts.TrtSupport], Iterator[LintFinding]]
_CHECKS: dict[str, list[Check]] = {}


def _check(*ops: str) -> Callable[[Check], Check]:
    """Register a per-node check for ``ops``."""

    def wrap(fn: Check) -> Check:
        for op in ops:
            _CHECKS.setdefault(op, []).append(fn)
        return fn

    return wrap


def finding(sev: str, rule: str, node: gs.Node | None, message: str, fix: str) -> LintFinding:
    """A finding on ``node`` (None: model-level); unnamed nodes are named by their first output."""
    if node is None:
        return LintFinding(sev, rule, "", "", message, fix)
    name = node.name or (node.outputs[0].name if node.outputs else "")
    return LintFinding(sev, rule, name, node.op, message, fix)


def _attr(node: gs.Node, name: str, default: Any) -> Any:
    value = node.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------- per-node checks


@_check("Resize")
def _resize(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    mode = _attr(node, "mode", "nearest")
    coord = _attr(node, "coordinate_transformation_mode", "half_pixel")
    nearest = _attr(node, "nearest_mode", "round_prefer_floor")
    if mode not in ts.RESIZE_MODES:
        yield finding(
            "error",
            "resize-mode",
            node,
            f"TensorRT {t.version} resizes with nearest/linear only, not {mode!r}",
            "re-export with mode nearest or linear (bilinear upsampling)",
        )
    if coord not in ts.RESIZE_COORD_MODES:
        yield finding(
            "error",
            "resize-mode",
            node,
            f"TensorRT {t.version} does not support coordinate_transformation_mode {coord!r}",
            f"re-export with one of {sorted(ts.RESIZE_COORD_MODES)}",
        )
    if mode == "nearest" and nearest not in ts.RESIZE_NEAREST_MODES:
        yield finding(
            "error",
            "resize-mode",
            node,
            f"unsupported nearest_mode {nearest!r}",
            "use floor/ceil/round_prefer_*",
        )
    if int(_attr(node, "antialias", 0)) or _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        text = t.restrictions.get("Resize", "antialias and keep_aspect_ratio_policy are not supported")
        yield finding(
            "error",
            "resize-mode",
            node,
            f"TensorRT {t.version}: {text}",
            "re-export without antialias and with keep_aspect_ratio_policy 'stretch'",
        )
    size_inputs = node.inputs[2:] if len(node.inputs) > 2 else node.inputs[1:]  # scales/sizes (not roi)
    if any(not is_empty_input(x) and not is_known(x) for x in size_inputs):
        yield finding(
            "warning",
            "dynamic-resize",
            node,
            "output size is computed at run time (scales/sizes are not constants); TensorRT must evaluate a "
            "shape-tensor subgraph (Shape/Slice/Floor/Cast), which DLA and int8 calibration handle poorly",
            "list fold-constants and normalize-resize in the recipe's fixes",
        )


@_check("MaxPool", "AveragePool", "LpPool")
def _pool(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    kernel = _attr(node, "kernel_shape", [])
    if kernel and len(kernel) not in (2, 3):
        yield finding(
            "error",
            "restriction",
            node,
            f"TensorRT {t.version}: {len(kernel)}D pooling; 2D or 3D pooling only",
            "reshape to 2D (e.g. add a unit spatial axis) around the pooling",
        )
    # exporters only add MaxPool's second output when something uses it
    if node.op == "MaxPool" and len(node.outputs) > 1 and node.outputs[1].name:
        yield finding(
            "error",
            "restriction",
            node,
            "MaxPool `Indices` output is unsupported",
            "do not use the indices output",
        )
    if t.version.startswith("10") and any(int(d) != 1 for d in _attr(node, "dilations", [])):
        yield finding(
            "error",
            "restriction",
            node,
            f"TensorRT {t.version}: pooling `dilations` must be empty or all ones",
            "re-export without pooling dilation",
        )


@_check("Einsum")
def _einsum(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    if "..." in str(_attr(node, "equation", "")):
        yield finding(
            "error",
            "restriction",
            node,
            f"TensorRT {t.version}: Einsum ellipsis is not supported",
            "rewrite the Einsum with MatMul/Transpose/Reshape",
        )


@_check("QuantizeLinear", "DequantizeLinear")
def _zero_point(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    zero = constant_value(node.inputs[2]) if len(node.inputs) > 2 else None
    if zero is not None and np.any(zero != 0):
        yield finding(
            "error",
            "restriction",
            node,
            f"TensorRT {t.version}: {node.op} zero point must be 0 (symmetric)",
            "quantize symmetrically (zero point 0)",
        )


@_check("NonMaxSuppression", "NonZero")
def _data_dependent(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    yield finding(
        "warning",
        "data-dependent-shape",
        node,
        f"{node.op} has a data-dependent output shape; TensorRT {t.version} pads/handles it slowly",
        "decode and NMS with the efficient-nms fix (EfficientNMS_TRT plugin), or do NMS on the host",
    )


@_check("If", "Loop", "LSTM", "GridSample", "ReverseSequence")
def _documented(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    """Restrictions the docs state for these ops: an error where we can see it is violated."""
    text = t.restrictions.get(node.op)
    if text is None:
        return
    data = node.inputs[0] if node.inputs else None
    if node.op == "ReverseSequence":
        if data is not None and static_shape(data) is None:
            yield finding(
                "error", "restriction", node, f"TensorRT {t.version} {node.op}: {text}", "run static-shape"
            )
        return
    bad = node.op == "LSTM" and bool(int(_attr(node, "input_forget", 0)) or int(_attr(node, "layout", 0)))
    bad = bad or (
        node.op == "GridSample" and data is not None and data.shape is not None and len(data.shape) != 4
    )
    fix = "re-export the model without it" if bad else "check the model against this restriction"
    yield finding(
        "error" if bad else "warning", "restriction", node, f"TensorRT {t.version} {node.op}: {text}", fix
    )


@_check("Cast")
def _cast(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    to = int(_attr(node, "to", 0))
    if to == onnx.TensorProto.INT64 and not t.int64_native:
        yield finding(
            "warning",
            "int64",
            node,
            f"TensorRT {t.version} has no INT64: Cast to int64 becomes int32",
            "usually harmless for shape math; fold-constants removes Casts on constant shapes",
        )
    elif to == onnx.TensorProto.DOUBLE:
        yield finding(
            "warning", "double", node, "Cast to double runs as float32 in TensorRT", "cast to float instead"
        )
    elif to in (onnx.TensorProto.STRING, onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128):
        yield finding(
            "error",
            "dtype",
            node,
            f"TensorRT {t.version} cannot Cast to {onnx.TensorProto.DataType.Name(to)}",
            "remove the cast from the exported graph",
        )


@_check("Shape")
def _shape(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    if node.inputs and static_shape(node.inputs[0]) is not None:
        yield finding(
            "warning",
            "foldable-shape",
            node,
            "Shape of a statically shaped tensor is computed at run time",
            "list fold-constants in the recipe",
        )


@_check("EfficientNMS_TRT")
def _efficient_nms(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    missing = [a for a in ts.EFFICIENT_NMS_ATTRS if a not in node.attrs]
    if missing or len(node.inputs) not in (2, 3) or len(node.outputs) != 4:
        yield finding(
            "error",
            "plugin",
            node,
            f"EfficientNMS_TRT node is malformed (missing attributes {missing}, "
            f"{len(node.inputs)} inputs, {len(node.outputs)} outputs)",
            "rebuild it with the efficient-nms fix",
        )


def node_findings(node: gs.Node, t: ts.TrtSupport) -> Iterator[LintFinding]:
    """Everything TensorRT ``t`` refuses or warns about in one node (op support, then op checks)."""
    status = t.status(node.op)
    custom = node.domain not in (None, "", "ai.onnx")
    if node.op in ts.PLUGINS and (custom or status != "supported"):
        pass  # found by name in TensorRT's plugin registry
    elif custom or status == "unknown":
        where = f" (domain {node.domain!r})" if custom else ""
        yield finding(
            "error",
            "unsupported-op",
            node,
            f"TensorRT {t.version} has no importer for {node.op}{where}",
            "replace the op in the exported graph, or write and register a TensorRT plugin of that name",
        )
        return
    elif status == "unsupported":
        yield finding(
            "error",
            "unsupported-op",
            node,
            f"TensorRT {t.version} does not support ONNX {node.op}",
            "replace the op (re-export with a different opset/implementation) or add a plugin",
        )
        return
    for index, name in t.const_inputs.get(node.op, {}).items():
        if (
            index < len(node.inputs)
            and not is_empty_input(node.inputs[index])
            and not is_known(node.inputs[index])
        ):
            yield finding(
                "error",
                "non-constant-input",
                node,
                f"TensorRT {t.version} {node.op}: {t.restrictions.get(node.op, f'`{name}` must be constant')}",
                "list fold-constants in the recipe's fixes (or re-export with a constant)",
            )
    for check in _CHECKS.get(node.op, []):
        yield from check(node, t)
