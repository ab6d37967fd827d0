"""Which quantised activations hurt the output most: candidates for ``quantize.keep_fp``.

For every activation tensor the Q/DQ plan quantises, a model with Q/DQ on *that tensor
only* (weights stay float) runs on a few calibration images; its error is the relative L2
distance of every model output to the float model's, averaged over outputs and images.
Early layers of detectors fed 0..255 pixels are typically the most sensitive (a 1 % change of
YOLOX-Nano's stem activation moves its raw outputs by ~7 %). Keeping the consumers of the
top tensors in float (the recipe's ``quantize.keep_fp``) recovers most of the int8 loss.

Cost: one onnxruntime session and ``images`` inferences per quantised tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesdk.quant.qdq import MIN_OPSET, apply_qdq, node_key, plan_qdq
from edgesdk.quant.stats import ImageBatches

if TYPE_CHECKING:
    import onnx

    from edgesdk.quant.calibrate import Prepared

__all__ = ["Sensitivity", "keep_fp_for", "rank_sensitivity"]

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Sensitivity:
    """The output error caused by quantising one activation tensor alone.

    Attributes:
        tensor: the activation tensor name.
        consumers: names of the nodes whose inputs get its Q/DQ (what ``keep_fp`` would list).
        error: mean relative L2 error of the model outputs (0.01 = 1 %).
    """

    tensor: str
    consumers: tuple[str, ...]
    error: float

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"tensor": self.tensor, "consumers": list(self.consumers), "error": self.error}


def _relative_error(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> float:
    errors = []
    for name, reference in want.items():
        scale = float(np.linalg.norm(reference))
        errors.append(float(np.linalg.norm(got[name] - reference)) / scale if scale > 0 else 0.0)
    return float(np.mean(errors))


def rank_sensitivity(
    prepared: Prepared,
    thresholds: Mapping[str, float],
    *,
    images: int = 4,
    keep_fp: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> list[Sensitivity]:
    """Rank the quantised activation tensors by the output error each causes alone.

    Args:
        prepared: the exported model and calibration images (:func:`~edgesdk.quant.calibrate.prepare`).
        thresholds: activation thresholds (e.g. a :class:`~edgesdk.quant.calibrate.CalibrationResult`'s).
        images: calibration images to measure on (the first ones chosen).
        keep_fp: nodes already kept in float.
        progress: called as ``progress(done, total)`` after each tensor.

    Returns:
        One :class:`Sensitivity` per quantised activation, largest error first.
    """
    from edgesdk.graph.io import convert_opset, onnxruntime_runner, to_graph, to_model

    model: onnx.ModelProto = prepared.exported.model
    graph = to_graph(model)
    if int(graph.opset) < MIN_OPSET:
        graph = convert_opset(graph, MIN_OPSET)
    recipe = prepared.recipe
    count = max(images, recipe.input.batch) // recipe.input.batch * recipe.input.batch
    feeds = list(ImageBatches(prepared.selection.chosen[:count], recipe))
    input_name = model.graph.input[0].name
    reference = onnxruntime_runner(model)
    wanted = [reference({input_name: feed}) for feed in feeds]
    tensors = list(plan_qdq(graph.copy(), thresholds, keep_fp=keep_fp).activations)
    ranked = []
    for done, name in enumerate(tensors, start=1):
        probe = graph.copy()
        plan = plan_qdq(probe, thresholds, keep_fp=keep_fp)
        scale, sites = plan.activations[name]
        plan.activations, plan.weights = {name: (scale, sites)}, []
        run = onnxruntime_runner(to_model(apply_qdq(probe, plan)))
        error = float(np.mean([_relative_error(run({input_name: f}), w) for f, w in zip(feeds, wanted)]))
        ranked.append(Sensitivity(name, tuple(sorted({node_key(node) for node, _ in sites})), error))
        if progress is not None:
            progress(done, len(tensors))
    return sorted(ranked, key=lambda s: -s.error)


def keep_fp_for(ranked: Sequence[Sensitivity], top: int) -> list[str]:
    """The node names to keep in float for the ``top`` most sensitive tensors (deduplicated, in order)."""
    names: list[str] = []
    for entry in ranked[:top]:
        names += [n for n in entry.consumers if n and n not in names]
    return names
