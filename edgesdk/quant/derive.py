"""Statistics that follow from another tensor's, so the passes need not tap both.

Every extra reader of a tensor costs onnxruntime more than the reading: a Conv output read by
a probe can no longer be fused with its activation, and a tensor in the blocked NCHWc layout
gets reordered for the probe. Two kinds of calibration tensor carry no information of their own:

- **moved data**: the output of ``Transpose``, ``Reshape``, ``Flatten``, ``Squeeze``,
  ``Unsqueeze`` or ``Identity`` holds exactly the values of its input, so its min, max, count
  and ``|x|`` histogram over ``[0, amax]`` *are* the input's (exact);
- **a LeakyReLU's input**: when a tensor ``x`` is read only by one ``LeakyRelu`` with
  ``alpha > 0`` (the Conv -> LeakyReLU pairs of RetinaFace and darknet models), its output
  ``y`` determines ``x``: ``x = y`` where ``y >= 0`` and ``x = y / alpha`` elsewhere. Pass 1
  takes ``x``'s range from ``y``'s; pass 2 bins ``LeakyRelu(y, 1/alpha)`` with ``x``'s scale.
  That is ``x`` up to float32 rounding (``y`` was rounded once on the way), so a value within
  an ulp or two of a bin edge may land in the neighbouring bin: a handful of the ~10^7 values
  per tensor, far below what moves a threshold.

:func:`derivations` finds them; the passes (:mod:`edgesdk.quant.passes`) measure only the
sources and fill the rest in with :func:`fill_range` and :func:`fill_histogram`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

    from edgesdk.quant.stats import TensorStats

__all__ = ["MOVES", "Derived", "derivations", "fill_histogram", "fill_range"]

MOVES = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
"""Ops whose first output holds exactly the values of their first input."""


@dataclass(frozen=True)
class Derived:
    """How a tensor's statistics follow from ``source``'s.

    Attributes:
        source: a measured tensor.
        alpha: None when the values are the same; else the slope of the LeakyReLU that maps
            this tensor to ``source`` (this tensor = ``source`` where >= 0, ``source / alpha``
            elsewhere).
    """

    source: str
    alpha: float | None = None


def _leaky_alpha(node: gs.Node) -> float | None:
    alpha = float(np.float32(node.attrs.get("alpha", 0.01)))  # an ONNX float attribute: float32
    return alpha if alpha > 0 else None


def _steps(graph: gs.Graph, wanted: set[str]) -> dict[str, Derived]:
    """One derivation step per tensor: moved data first (exact), else a LeakyReLU's input."""
    outputs = {t.name for t in graph.outputs}
    steps: dict[str, Derived] = {}
    for node in graph.nodes:
        if node.op in MOVES and node.inputs and node.outputs:
            out, src = node.outputs[0].name, node.inputs[0].name
            if out in wanted and src in wanted:
                steps[out] = Derived(src)
    for name, tensor in graph.tensors().items():
        if name not in wanted or name in steps or name in outputs or len(tensor.outputs) != 1:
            continue
        reader = tensor.outputs[0]
        if reader.op != "LeakyRelu" or not reader.outputs or reader.inputs[0].name != name:
            continue
        alpha = _leaky_alpha(reader)
        if alpha is not None and reader.outputs[0].name in wanted:
            steps[name] = Derived(reader.outputs[0].name, alpha)
    return steps


def _resolve(name: str, steps: Mapping[str, Derived]) -> Derived | None:
    """Follow the steps to a measured tensor; None for a cycle or two LeakyReLUs on the way."""
    seen = {name}
    alpha: float | None = None
    current = name
    while current in steps:
        step = steps[current]
        if step.alpha is not None:
            if alpha is not None:
                return None
            alpha = step.alpha
        current = step.source
        if current in seen:
            return None
        seen.add(current)
    return Derived(current, alpha)


def derivations(graph: gs.Graph, names: Sequence[str]) -> dict[str, Derived]:
    """The tensors of ``names`` whose statistics follow from another tensor of ``names``.

    Args:
        graph: the model's graph (not modified).
        names: the tensors measured in the graph (float32 calibration tensors).

    Returns:
        Derived tensor -> :class:`Derived` with a source that is not itself derived.
    """
    steps = _steps(graph, set(names))
    out: dict[str, Derived] = {}
    for name in steps:
        resolved = _resolve(name, steps)
        if resolved is not None:
            out[name] = resolved
    # A chain that was dropped (cycle, two LeakyReLUs) leaves its members measured; a tensor
    # derived from one of them must then follow that measured tensor, not a dropped step.
    return {n: d for n, d in out.items() if d.source not in out}


def _unleak(value: float, alpha: float | None) -> float:
    return value / alpha if alpha is not None and value < 0 else value


def fill_range(stats: TensorStats, source: TensorStats, alpha: float | None) -> None:
    """Pass 1: ``stats``'s min, max and counts from its source's."""
    stats.count, stats.nonfinite = source.count, source.nonfinite
    if source.count:
        stats.lo, stats.hi = _unleak(source.lo, alpha), _unleak(source.hi, alpha)


def fill_histogram(stats: TensorStats, source: TensorStats) -> None:
    """Pass 2: moved data has its source's histogram (the same values over the same range)."""
    stats.hist = None if source.hist is None else np.array(source.hist, copy=True)
