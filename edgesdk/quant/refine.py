"""Accuracy steps between the thresholds and the final Q/DQ model (issue #5).

:func:`~edgesdk.quant.calibrate.finish` calls, in order:

1. :func:`refine_thresholds`: with ``calibrator: mixed``, every quantised activation gets
   the candidate threshold that disturbs its consuming layers least
   (:mod:`edgesdk.quant.mixed`); with ``quantize.keep_fp_auto: K``, the consumers of the K
   activations whose quantisation alone hurts the outputs most
   (:mod:`edgesdk.quant.sensitivity`) are added to ``keep_fp``.
2. :func:`refine_qdq`: with ``quantize.bias_correction: true``, the float biases of the
   quantised convolutions absorb the mean output shift their int8 weights cause
   (:mod:`edgesdk.quant.biascorr`).

Each step leaves a plain Q/DQ model (symmetric int8, per-channel weights, per-tensor
activations, float layers without Q/DQ): what TensorRT runs for explicit quantization.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgesdk.quant.calibrators import CalibratorOptions
from edgesdk.quant.histogram import fraction_above
from edgesdk.quant.stats import ImageBatches
from edgesdk.quant.summary import FLAGS, SATURATION_WARN, TensorSummary, compute_thresholds, summarize

if TYPE_CHECKING:
    import onnx

    from edgesdk.quant.biascorr import BiasCorrection
    from edgesdk.quant.calibrate import Prepared
    from edgesdk.quant.mixed import MixedChoice
    from edgesdk.quant.sensitivity import Sensitivity

__all__ = ["BIAS_IMAGES", "MIXED", "Refined", "refine_qdq", "refine_thresholds"]

MIXED = "mixed"
BIAS_IMAGES = 16
"""Calibration images the bias correction measures on."""

ProgressFn = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; phases ``mixed``, ``sensitivity``, ``bias``."""


@dataclass
class Refined:
    """Thresholds and float layers after :func:`refine_thresholds`.

    Attributes:
        thresholds: tensor name -> threshold.
        keep_fp: node names kept in float (the recipe's own first, then the automatic ones).
        auto_keep: the node names ``keep_fp_auto`` added.
        mixed: the per-tensor choice (``calibrator: mixed`` only).
        sensitivity: the ranking ``keep_fp_auto`` used (empty when 0).
        bias: what the bias correction changed (set by ``finish`` after :func:`refine_qdq`).
        seconds: time per step.
    """

    thresholds: dict[str, float]
    keep_fp: list[str]
    auto_keep: list[str] = field(default_factory=list)
    mixed: MixedChoice | None = None
    sensitivity: list[Sensitivity] = field(default_factory=list)
    bias: BiasCorrection | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for summary.json."""
        return {
            "keep_fp_auto": list(self.auto_keep),
            "mixed": self.mixed.to_json() if self.mixed is not None else None,
            "bias_correction": self.bias.to_json() if self.bias is not None else None,
        }


def _phase(progress: ProgressFn | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(name, done, total)) if progress else None


def refine_thresholds(
    prepared: Prepared,
    calibrator: str,
    thresholds: Mapping[str, float],
    *,
    progress: ProgressFn | None = None,
) -> Refined:
    """The ``mixed`` thresholds and the ``keep_fp_auto`` float layers (see the module docstring).

    Args:
        prepared: the exported model, images and statistics.
        calibrator: the calibrator name (``mixed`` triggers the per-tensor search).
        thresholds: the calibrator's histogram thresholds (for ``mixed``: its fallback's).
        progress: see :data:`ProgressFn`.
    """
    from edgesdk.quant.mixed import BASE_CALIBRATORS, mixed_thresholds
    from edgesdk.quant.sensitivity import keep_fp_for, rank_sensitivity

    quantize = prepared.recipe.quantize
    refined = Refined(dict(thresholds), list(quantize.keep_fp))
    if calibrator == MIXED:
        started = time.perf_counter()
        options = CalibratorOptions(percentile=quantize.percentile)
        base = {
            name: compute_thresholds(summarize(prepared.stats, name, options)) for name in BASE_CALIBRATORS
        }
        refined.mixed = mixed_thresholds(
            prepared,
            base,
            images=quantize.mixed_images,
            keep_fp=refined.keep_fp,
            progress=_phase(progress, "mixed"),
        )
        refined.thresholds = refined.mixed.thresholds
        refined.seconds["mixed"] = time.perf_counter() - started
    if quantize.keep_fp_auto > 0:
        started = time.perf_counter()
        refined.sensitivity = rank_sensitivity(
            prepared, refined.thresholds, keep_fp=refined.keep_fp, progress=_phase(progress, "sensitivity")
        )
        refined.auto_keep = keep_fp_for(refined.sensitivity, quantize.keep_fp_auto)
        refined.keep_fp += [n for n in refined.auto_keep if n not in refined.keep_fp]
        refined.seconds["sensitivity"] = time.perf_counter() - started
    return refined


def resummarize(
    prepared: Prepared, tensors: list[TensorSummary], thresholds: Mapping[str, float]
) -> list[TensorSummary]:
    """The summaries with their threshold and saturation replaced by ``thresholds``' (others unchanged)."""
    out = []
    for summary in tensors:
        new = thresholds.get(summary.name)
        stats = prepared.stats.tensors.get(summary.name)
        if new is None or summary.threshold is None or new == summary.threshold or stats is None:
            out.append(summary)
            continue
        hist = stats.hist
        saturation = fraction_above(hist, stats.amax, new) if hist is not None else summary.saturation
        # the saturation flag follows the threshold actually used (it was set for the first one)
        flags = [f for f in summary.flags if f != "saturates"]
        if saturation > SATURATION_WARN:
            flags.append("saturates")
        flags.sort(key=FLAGS.index)
        out.append(
            dataclasses.replace(
                summary, threshold=float(new), saturation=saturation, kl=None, flags=tuple(flags)
            )
        )
    return out


def refine_qdq(
    prepared: Prepared, qdq: onnx.ModelProto, *, progress: ProgressFn | None = None
) -> tuple[onnx.ModelProto, BiasCorrection | None]:
    """The Q/DQ model with ``quantize.bias_correction`` applied (unchanged when it is off).

    Measures on the first :data:`BIAS_IMAGES` calibration images.
    """
    from edgesdk.quant.biascorr import correct_biases

    if not prepared.recipe.quantize.bias_correction:
        return qdq, None
    recipe = prepared.recipe
    count = max(BIAS_IMAGES, recipe.input.batch) // recipe.input.batch * recipe.input.batch
    batches = ImageBatches(prepared.selection.chosen[:count], recipe)
    input_name = recipe.input.name or prepared.exported.model.graph.input[0].name
    result = correct_biases(
        qdq,
        ({input_name: batch} for batch in batches),
        total=len(batches) // batches.batch,
        progress=_phase(progress, "bias"),
    )
    return result.model, result
