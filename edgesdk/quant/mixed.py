"""The ``mixed`` calibrator: per tensor, the threshold that disturbs the next layer least.

Every histogram calibrator judges a tensor by its own distribution; none knows that the
next convolution may weigh a few small-valued channels heavily (YOLOX-Nano's stem output:
values up to 138, most below 5; entropy's 17 keeps 44 mAP50, mse's 89 drops it to 16).
``mixed`` picks, for each activation the Q/DQ plan quantises, among candidate thresholds
(every histogram calibrator's choice plus ``amax * 2^(-j/4)``, j = 0 … 16) the one whose
quantisation error, *seen through the consuming layers*, is smallest on a few calibration
images:

    err(T) = sum over consumers c of ||c_W(Q_T(x) - x)||^2 / ||c(x)||^2

where ``c_W`` is the consumer's linear part without bias (Conv/Gemm/MatMul with its float
weight) and the identity for a residual Add. The error term is computed by probe branches
(:mod:`edgesdk.quant.probe`) in one onnxruntime run per image over the float model's own
activations. The result is a plain threshold per tensor: the TensorRT cache and the Q/DQ
model are made from it as from any calibrator.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.quant.probe import Prober, run_sums
from edgesdk.quant.qdq import INT8_MAX, MIN_OPSET, plan_qdq
from edgesdk.quant.stats import ImageBatches

if TYPE_CHECKING:
    import onnx

    from edgesdk.quant.calibrate import Prepared

__all__ = ["BASE_CALIBRATORS", "GRID_STEPS", "MixedChoice", "mixed_thresholds"]

BASE_CALIBRATORS = ("entropy", "entropy-nozero", "percentile", "mse")
"""Histogram calibrators whose thresholds are candidates (besides the grid)."""

GRID_STEPS = 17
"""Grid candidates ``amax * 2^(-j/4)`` for j = 0 … GRID_STEPS-1 (down to amax/16)."""

ProgressFn = Callable[[int, int], None]
_LINEAR = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class MixedChoice:
    """What :func:`mixed_thresholds` chose.

    Attributes:
        thresholds: tensor name -> threshold (every tensor of the input thresholds; the
            quantised activations get their chosen candidate, the others keep the default).
        source: tensor name -> which candidate won (a calibrator name or ``amax/2^(j/4)``).
        error: tensor name -> relative consumer-output error at the chosen threshold.
        images: images measured on.
    """

    thresholds: dict[str, float]
    source: dict[str, str] = field(default_factory=dict)
    error: dict[str, float] = field(default_factory=dict)
    images: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data: per quantised tensor, the winning candidate and its error."""
        return {
            "images": self.images,
            "tensors": {
                name: {
                    "threshold": self.thresholds[name],
                    "from": self.source[name],
                    "error": self.error[name],
                }
                for name in self.source
            },
        }


def _candidates(base: Mapping[str, Mapping[str, float]], name: str, amax: float) -> list[tuple[str, float]]:
    found = [(cal, float(t[name])) for cal, t in base.items() if name in t]
    found += [(f"amax/2^({j}/4)", amax * 2.0 ** (-j / 4)) for j in range(GRID_STEPS)]
    return [(label, t) for label, t in found if np.isfinite(t) and t > 0]


def _error_branch(prober: Prober, node: gs.Node, index: int, error: gs.Variable) -> str:
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    if node.op in _LINEAR and index == 0 and isinstance(weight, gs.Constant):
        attrs = dict(node.attrs)
        if node.op == "Gemm":
            attrs.pop("beta", None)
        seen = prober.node(node.op, [error, weight], attrs)
        return prober.sum_squares(seen)
    return prober.sum_squares(error)


def _reference_branch(prober: Prober, node: gs.Node, index: int) -> str:
    if node.op in _LINEAR and index == 0 and isinstance(node.inputs[1], gs.Constant):
        return prober.sum_squares(node.outputs[0])
    return prober.sum_squares(node.inputs[index])


def _build(
    graph: gs.Graph,
    thresholds: Mapping[str, float],
    base: Mapping[str, Mapping[str, float]],
    amax: Mapping[str, float],
    keep_fp: Collection[str],
) -> tuple[Prober, dict[str, list[tuple[str, float, list[str]]]], dict[str, list[str]]]:
    plan = plan_qdq(graph, thresholds, keep_fp=keep_fp)
    prober = Prober(graph)
    branches: dict[str, list[tuple[str, float, list[str]]]] = {}
    references: dict[str, list[str]] = {}
    for name, (_scale, sites) in plan.activations.items():
        x = sites[0][0].inputs[sites[0][1]]
        references[name] = [_reference_branch(prober, node, index) for node, index in sites]
        branches[name] = []
        for label, t in _candidates(base, name, amax[name]):
            error = prober.node("Sub", [prober.fake_quant(x, t / INT8_MAX), x])
            outs = [_error_branch(prober, node, index, error) for node, index in sites]
            branches[name].append((label, t, outs))
    return prober, branches, references


def mixed_thresholds(
    prepared: Prepared,
    base: Mapping[str, Mapping[str, float]],
    *,
    default: str = "entropy-nozero",
    images: int = 8,
    keep_fp: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> MixedChoice:
    """Per quantised activation, the candidate threshold with the least consumer-output error.

    Args:
        prepared: the exported model, calibration images and statistics.
        base: calibrator name -> its thresholds (candidates; see :data:`BASE_CALIBRATORS`).
        default: the calibrator whose thresholds the tensors not quantised in the Q/DQ
            model keep (they still go to the TensorRT cache).
        images: calibration images to measure on (the first ones chosen).
        keep_fp: nodes kept in float (their inputs are not searched).
        progress: ``progress(done, total)`` per image.

    Returns:
        The chosen thresholds (see :class:`MixedChoice`).

    Raises:
        GraphError: onnxruntime cannot run the probe model.
    """
    from edgesdk.graph.io import convert_opset, to_graph, to_model

    model: onnx.ModelProto = prepared.exported.model
    graph = to_graph(model)
    if int(graph.opset) < MIN_OPSET:
        graph = convert_opset(graph, MIN_OPSET)
    defaults = dict(base[default])
    amax = {name: s.amax for name, s in prepared.stats.tensors.items()}
    prober, branches, references = _build(graph, defaults, base, amax, keep_fp)
    recipe = prepared.recipe
    count = max(images, recipe.input.batch) // recipe.input.batch * recipe.input.batch
    input_name = recipe.input.name or model.graph.input[0].name
    batches = ImageBatches(prepared.selection.chosen[:count], recipe)
    feeds = ({input_name: batch} for batch in batches)
    sums = run_sums(
        to_model(graph), prober.outputs, feeds, progress=progress, total=len(batches) // batches.batch
    )
    choice = MixedChoice(defaults, images=len(batches))
    for name, options in branches.items():
        refs = [max(float(sums[r]), 1e-30) for r in references[name]]
        errors = [sum(float(sums[o]) / ref for o, ref in zip(outs, refs)) for _label, _t, outs in options]
        best = int(np.argmin(errors))
        label, threshold, _outs = options[best]
        choice.thresholds[name] = threshold
        choice.source[name] = label
        choice.error[name] = errors[best]
    return choice
