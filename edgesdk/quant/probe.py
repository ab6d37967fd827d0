"""Probe branches: small side computations added to a copy of a model, read as extra outputs.

The threshold search (:mod:`edgesdk.quant.mixed`) and the bias correction
(:mod:`edgesdk.quant.biascorr`) both need, per layer, a statistic of a *modified* copy of
that layer (its input quantised, its weights perturbed) over calibration images. Rather than
running layers in numpy, they add branches to the graph that reduce to a few numbers each
(``ReduceSumSquare``, ``ReduceMean``) and run the whole graph once per image with onnxruntime.
The original nodes are never changed; every name a branch adds starts with ``probe/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_graphsurgeon as gs

if TYPE_CHECKING:
    import onnx

__all__ = ["Prober", "run_sums"]

ProgressFn = Callable[[int, int], None]


class Prober:
    """Adds probe branches to ``graph`` (in place) and marks their results as graph outputs.

    Args:
        graph: the graph to extend (its original outputs stay first).
    """

    def __init__(self, graph: gs.Graph) -> None:
        self.graph = graph
        self._count = 0
        self.outputs: list[str] = []

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"probe/{self._count}/{hint}"

    def node(
        self, op: str, inputs: list[gs.Tensor], attrs: dict[str, Any] | None = None, dtype: Any = np.float32
    ) -> gs.Variable:
        """Append one ``op`` node and return its (single) output tensor."""
        out = gs.Variable(self._name(op + "_out"), dtype=dtype)
        self.graph.nodes.append(gs.Node(op, self._name(op), dict(attrs or {}), inputs, [out]))
        return out

    def const(self, values: np.ndarray, hint: str = "const") -> gs.Constant:
        """A new constant tensor."""
        return gs.Constant(self._name(hint), np.ascontiguousarray(values))

    def fake_quant(self, x: gs.Tensor, scale: float) -> gs.Variable:
        """``DequantizeLinear(QuantizeLinear(x))``: symmetric per-tensor int8 at ``scale``."""
        s = self.const(np.array(scale, np.float32), "scale")
        zero = self.const(np.array(0, np.int8), "zero")
        q = self.node("QuantizeLinear", [x, s, zero], dtype=np.int8)
        return self.node("DequantizeLinear", [q, s, zero])

    def output(self, tensor: gs.Variable) -> str:
        """Mark ``tensor`` as an extra graph output; returns its name."""
        self.graph.outputs.append(tensor)
        self.outputs.append(tensor.name)
        return tensor.name

    def sum_squares(self, x: gs.Tensor) -> str:
        """An output holding ``sum(x ** 2)`` (a scalar)."""
        return self.output(self.node("ReduceSumSquare", [x], {"keepdims": 0}))

    def channel_mean(self, x: gs.Tensor, axes: Iterable[int], opset: int) -> str:
        """An output holding the mean of ``x`` over ``axes`` (what is left: the channels)."""
        axes = [int(a) for a in axes]
        if opset >= 18:
            reduced = self.node(
                "ReduceMean", [x, self.const(np.array(axes, np.int64), "axes")], {"keepdims": 0}
            )
        else:
            reduced = self.node("ReduceMean", [x], {"axes": axes, "keepdims": 0})
        return self.output(reduced)


def run_sums(
    model: onnx.ModelProto,
    names: list[str],
    feeds: Iterable[Mapping[str, np.ndarray]],
    *,
    progress: ProgressFn | None = None,
    total: int = 0,
) -> dict[str, np.ndarray]:
    """Run ``model`` on every feed and add up the outputs ``names`` (float64).

    Raises:
        GraphError: onnxruntime cannot load or run the model.
    """
    from edgesdk.graph.io import onnxruntime_runner

    run = onnxruntime_runner(model)
    sums: dict[str, np.ndarray] = {}
    for done, feed in enumerate(feeds, start=1):
        values = run(feed)
        for name in names:
            value = np.asarray(values[name], np.float64)
            sums[name] = sums[name] + value if name in sums else value
        if progress is not None:
            progress(done, total)
    return sums
