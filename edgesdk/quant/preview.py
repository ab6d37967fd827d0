"""int8 accuracy preview: fp32 vs int8-simulated (Q/DQ on onnxruntime) mAP, per calibrator.

The int8 model is the explicit-quantization Q/DQ model (:mod:`edgesdk.quant.qdq`): activations
are quantised at the inputs of Conv/Gemm/MatMul and residual Adds, weights per channel,
everything else runs in float. That is what TensorRT runs for a Q/DQ model; a TensorRT engine
built from the calibration cache (implicit quantization) may quantise more layers.

Either from an earlier ``edgesdk calibrate -o DIR`` (``calibration=DIR``: one row, that
folder's calibrator), or calibrating first: the statistics are gathered once and every
requested calibrator gets its own Q/DQ model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesdk.errors import CalibrationError
from edgesdk.quant.calibrate import finish, load_qdq, prepare
from edgesdk.quant.calibrators import get_calibrator

if TYPE_CHECKING:
    import onnx

    from edgesdk.eval.runner import EvalResult
    from edgesdk.recipe import Recipe

__all__ = ["Int8Preview", "int8_preview"]

ProgressFn = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; phases ``select``, ``statistics``, ``fp32``, ``int8 <calibrator>``."""


@dataclass
class Int8Preview:
    """fp32 and int8-simulated scores of one recipe on one labelled folder.

    Attributes:
        fp32: the float model's result.
        int8: calibrator -> the Q/DQ model's result.
        calibration: where the int8 models came from (folder or images, counts, warnings).
    """

    fp32: EvalResult
    int8: dict[str, EvalResult]
    calibration: dict[str, Any] = field(default_factory=dict)

    def best(self) -> str:
        """The calibrator with the highest int8 mAP50 (the first on ties)."""
        return max(self.int8, key=lambda name: self.int8[name].map50)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``: per calibrator, fp32 and int8 mAP and the drop (points)."""
        rows = {
            name: {
                "map50": result.map50,
                "map50_95": result.map50_95,
                "drop_map50_points": round(100 * (self.fp32.map50 - result.map50), 3),
                "drop_map50_95_points": round(100 * (self.fp32.map50_95 - result.map50_95), 3),
            }
            for name, result in self.int8.items()
        }
        return {
            "model": self.fp32.model,
            "data": self.fp32.data,
            "images": self.fp32.images,
            "fp32": {"map50": self.fp32.map50, "map50_95": self.fp32.map50_95},
            "int8": rows,
            "best": self.best(),
            "calibration": self.calibration,
            "protocol": self.fp32.protocol,
        }


def int8_preview(
    recipe: Recipe,
    data_dir: Path,
    *,
    calibration: Path | None = None,
    calibrators: Sequence[str] | None = None,
    images: Path | None = None,
    count: int | None = None,
    model_dir: Path | None = None,
    model: Path | None = None,
    limit: int | None = None,
    min_size: float = 0.0,
    progress: ProgressFn | None = None,
) -> Int8Preview:
    """Evaluate the fp32 model and its int8 Q/DQ simulation(s) on a labelled folder.

    Args:
        recipe: the validated recipe.
        data_dir: the labelled folder (as for ``edgesdk eval``).
        calibration: a folder from ``edgesdk calibrate -o``; excludes ``calibrators``/``images``/``count``.
        calibrators: calibrators to compare (default: the recipe's ``quantize.calibrator``).
        images: calibration images (default: ``data_dir`` itself; optimistic, the same images
            are then scored).
        count: calibration images to choose (default: the recipe's ``quantize.count``).
        model_dir: folder for the recipe's relative model paths.
        model: a model file overriding the recipe's.
        limit: evaluate only the first ``limit`` images.
        min_size: ignore ground-truth boxes with a side below this many pixels.
        progress: see :data:`ProgressFn`.

    Raises:
        CalibrationError: conflicting options, unknown calibrator, or see :func:`~edgesdk.quant.calibrate.finish`.
        ArtifactNotFound, DatasetError, ModelFormatError: see ``evaluate`` and ``calibrate``.
    """
    from edgesdk.eval.runner import evaluate

    def phase(name: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(name, done, total)) if progress else None

    if calibration is not None and (calibrators or images is not None or count is not None):
        raise CalibrationError(
            "--calibration uses the Q/DQ model of an earlier `edgesdk calibrate`; "
            "it cannot be combined with --calibrator, --images or --count",
            hint="drop --calibration to calibrate again, or drop the other options",
        )
    if calibration is not None:
        qdq, summary = load_qdq(calibration, recipe)
        models = {str(summary.get("calibrator", "int8")): qdq}
        info: dict[str, Any] = {"folder": str(calibration), "images": summary.get("images", {}).get("count")}
    else:
        names = list(calibrators or [recipe.quantize.calibrator])
        for name in names:
            get_calibrator(name)
        source = Path(images) if images is not None else Path(data_dir)
        prepared = prepare(recipe, source, count=count, model_dir=model_dir, model=model, progress=progress)
        models = {name: finish(prepared, name).qdq for name in names}
        info = {
            "images_dir": str(source),
            "images": prepared.stats.images,
            "warnings": list(prepared.selection.warnings),
            "same_images_as_eval": images is None,
        }

    def run(label: str, override: onnx.ModelProto | None) -> EvalResult:
        return evaluate(
            recipe,
            data_dir,
            model_dir=model_dir,
            model=model,
            limit=limit,
            min_size=min_size,
            progress=phase(label),
            model_override=override,
        )

    fp32 = run("fp32", None)
    return Int8Preview(fp32, {name: run(f"int8 {name}", qdq) for name, qdq in models.items()}, info)
