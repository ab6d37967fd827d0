"""Reading the constant arguments of layout ops across opsets (attribute vs input forms).

Shared by the coupling rules (to decide how channels move) and the apply handlers (to
rewrite the arguments after pruning). Every function returns None when an argument is
computed (not known at export time), so the caller can refuse the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, is_empty_input

INT64_MAX = np.iinfo(np.int64).max


def input_value(node: gs.Node, index: int) -> np.ndarray | None:
    """The constant value of input ``index`` (None when absent, empty or computed)."""
    if index >= len(node.inputs) or is_empty_input(node.inputs[index]):
        return None
    value = constant_value(node.inputs[index])
    return None if value is None else np.asarray(value)


def has_input(node: gs.Node, index: int) -> bool:
    """Whether optional input ``index`` is given."""
    return index < len(node.inputs) and not is_empty_input(node.inputs[index])


def axes(node: gs.Node, input_index: int, rank: int) -> list[int] | None:
    """``axes`` (attribute, or input ``input_index`` in newer opsets) normalised to ``0..rank-1``.

    Returns [] when the node has no axes at all, None when they are computed.
    """
    if "axes" in node.attrs:
        raw = list(node.attrs["axes"])
    elif has_input(node, input_index):
        value = input_value(node, input_index)
        if value is None:
            return None
        raw = [int(v) for v in value.reshape(-1)]
    else:
        return []
    return [a + rank if a < 0 else a for a in raw]


@dataclass(frozen=True)
class SliceAxis:
    """One sliced axis: ``start``/``end`` clamped to ``0..dim`` as ONNX does, and ``step``."""

    axis: int
    start: int
    end: int
    step: int


def slice_raw(node: gs.Node) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """A Slice node's (starts, ends, axes, steps) as written (None: some are computed)."""
    if "starts" in node.attrs:  # opset < 10
        starts, ends = [int(v) for v in node.attrs["starts"]], [int(v) for v in node.attrs["ends"]]
        raw_axes = [int(v) for v in node.attrs.get("axes", range(len(starts)))]
        return starts, ends, raw_axes, [1] * len(starts)
    values = [input_value(node, i) for i in range(1, 5)]
    if any(v is None and has_input(node, i) for i, v in zip(range(1, 5), values)):
        return None
    s, e, a, st = values
    if s is None or e is None:
        return None
    starts, ends = [int(v) for v in s], [int(v) for v in e]
    raw_axes = [int(v) for v in a] if a is not None else list(range(len(starts)))
    steps = [int(v) for v in st] if st is not None else [1] * len(starts)
    return starts, ends, raw_axes, steps


def slice_axes(node: gs.Node, shape: tuple[int, ...]) -> list[SliceAxis] | None:
    """The slices of a Slice node over an input of static ``shape`` (None: arguments computed).

    Starts and ends are clamped as ONNX does; axes are normalised to ``0..rank-1``.
    """
    raw = slice_raw(node)
    if raw is None:
        return None
    starts, ends, raw_axes, steps = raw
    out = []
    for ax, start, end, step in zip(raw_axes, starts, ends, steps):
        ax = ax + len(shape) if ax < 0 else ax
        dim = shape[ax]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        lo, hi = (0, dim) if step > 0 else (-1, dim - 1)
        out.append(SliceAxis(ax, min(max(start, lo), hi), min(max(end, lo), hi), step))
    return out


def split_sizes(node: gs.Node, dim: int) -> list[int] | None:
    """Output sizes of a Split over an axis of size ``dim`` (None: computed sizes)."""
    if "split" in node.attrs:
        return [int(v) for v in node.attrs["split"]]
    if has_input(node, 1):
        value = input_value(node, 1)
        return None if value is None else [int(v) for v in value]
    parts = int(node.attrs.get("num_outputs", len(node.outputs)))
    chunk = -(-dim // parts)  # ceil: the last part may be smaller (opset 18 semantics)
    return [min(chunk, dim - i * chunk) for i in range(parts)]
