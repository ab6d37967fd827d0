"""int8 calibration of a recipe's model: select images → statistics → thresholds → outputs.

The model calibrated is the recipe's *exported* model (its graph fixes applied): its tensor
names are what TensorRT's ONNX parser sees on the device. Outputs (:func:`write_outputs`):

- ``calibration.cache``: TensorRT's cache (:mod:`edgesdk.quant.cache`) holding every tensor
  with a usable range *except* the outputs of nodes kept in float (``quantize.keep_fp`` and
  the decoder tail, see :mod:`edgesdk.quant.qdq`): TensorRT runs a layer in int8 only when
  its tensors have scales, so those layers stay in fp16/fp32 on the device.
- ``model.qdq.onnx``: the explicit-quantization model (opset raised to 13 if lower).
- ``summary.json``: the chosen images, per-tensor thresholds/saturation/KL/flags, the Q/DQ
  placement, timings.
- ``model.onnx``: only with ``quantize.equalize`` or ``quantize.weight_rounding: gptq``: the
  equalised / GPTQ-rounded float model (:mod:`edgesdk.quant.equalize`,
  :mod:`edgesdk.quant.gptq`) the cache and the Q/DQ model belong to; a deploy with
  ``--calibration`` bundles it as the model.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edgesdk import __version__
from edgesdk.errors import ArtifactNotFound, CalibrationError
from edgesdk.quant.cache import CACHE_ALGORITHM, DEFAULT_TRT, make_cache, trt_code
from edgesdk.quant.calibrators import CalibratorOptions, get_calibrator
from edgesdk.quant.qdq import MIN_OPSET, QdqPlan, apply_qdq, decoder_tail, is_kept, plan_qdq
from edgesdk.quant.refine import Refined, refine_qdq, refine_thresholds, resummarize
from edgesdk.quant.select import Selection, select_images
from edgesdk.quant.sensitivity import Sensitivity, keep_fp_for, rank_sensitivity
from edgesdk.quant.stats import ActivationStats, ImageBatches, collect_stats
from edgesdk.quant.summary import TensorSummary, compute_thresholds, summarize

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import onnx_graphsurgeon as gs

    from edgesdk.export import ExportResult
    from edgesdk.quant.equalize import Equalization
    from edgesdk.quant.gptq import WeightRounding
    from edgesdk.recipe import Recipe

__all__ = [
    "CACHE_FILE",
    "EQUALIZE_IMAGES",
    "MODEL_FILE",
    "QDQ_FILE",
    "SUMMARY_FILE",
    "CalibrationResult",
    "Prepared",
    "calibrate",
    "finish",
    "float_outputs",
    "load_qdq",
    "prepare",
    "qdq_model",
    "write_outputs",
]

CACHE_FILE = "calibration.cache"
QDQ_FILE = "model.qdq.onnx"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.onnx"
EQUALIZE_IMAGES = 16
"""Calibration images ``quantize.equalize`` measures the channel ranges on."""

ProgressFn = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases ``select`` (files) and ``statistics``
(images x passes)."""


@dataclass
class Prepared:
    """What every calibrator needs: the exported model, the images and their statistics.

    With ``quantize.equalize``, ``exported.model`` is the equalised model and ``equalization``
    says what changed; with ``quantize.weight_rounding: gptq`` its weights are also rounded
    (after equalisation) and ``rounding`` says how.
    """

    recipe: Recipe
    exported: ExportResult
    selection: Selection
    stats: ActivationStats
    seconds: dict[str, float] = field(default_factory=dict)
    equalization: Equalization | None = None
    rounding: WeightRounding | None = None


@dataclass
class CalibrationResult:
    """One calibrator's outputs for a recipe.

    Attributes:
        prepared: the model, images and statistics.
        calibrator: the calibrator name.
        trt_version: the cache header's TensorRT version code.
        tensors: per-tensor summaries, in graph order.
        cache: the calibration cache bytes.
        cache_tensors: the tensors written to the cache, in order.
        qdq: the Q/DQ model; ``plan`` says where the Q/DQ nodes went.
        files: what :func:`write_outputs` wrote.
        sensitivity: quantised activations ranked by the output error each causes alone
            (empty unless asked for); ``suggest``: how many of them ``suggested_keep_fp`` covers.
    """

    prepared: Prepared
    calibrator: str
    trt_version: int
    tensors: list[TensorSummary]
    cache: bytes
    cache_tensors: list[str]
    qdq: onnx.ModelProto
    plan: QdqPlan
    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    sensitivity: list[Sensitivity] = field(default_factory=list)
    suggest: int = 0
    refined: Refined | None = None

    @property
    def flagged(self) -> list[TensorSummary]:
        """Tensors with any flag."""
        return [t for t in self.tensors if t.flags]

    @property
    def suggested_keep_fp(self) -> list[str]:
        """keep_fp node names for the ``suggest`` most sensitive tensors (with the recipe's own)."""
        return list(self.prepared.recipe.quantize.keep_fp) + keep_fp_for(self.sensitivity, self.suggest)

    def summary_json(self) -> dict[str, Any]:
        """summary.json's content (also the ``--json`` output)."""
        prepared = self.prepared
        stats = prepared.stats
        quantize = prepared.recipe.quantize
        return {
            "recipe": prepared.recipe.name,
            "edgesdk_version": __version__,
            "calibrator": self.calibrator,
            "percentile": quantize.percentile if self.calibrator == "percentile" else None,
            "keep_fp": list(quantize.keep_fp),
            "model": {"source": str(prepared.exported.source), "metadata": prepared.exported.metadata},
            "cache": {
                "header": f"TRT-{self.trt_version}-{CACHE_ALGORITHM}",
                "trt_version": self.trt_version,
                "tensors": len(self.cache_tensors),
                "left_out_float": sorted(
                    {t.name for t in self.tensors if t.threshold is not None} - set(self.cache_tensors)
                ),
                "left_out_broken": [t.name for t in self.tensors if t.broken],
            },
            "images": prepared.selection.to_json(),
            "statistics": {
                "images": stats.images,
                "passes": stats.passes,
                "dropped_partial_batch": stats.dropped,
                "unreadable": [str(p) for p in stats.skipped],
                "seconds_infer": round(stats.seconds_infer, 3),
                "seconds_stats": round(stats.seconds_stats, 3),
            },
            "flagged": {t.name: list(t.flags) for t in self.flagged},
            "tensors": [t.to_json() for t in self.tensors],
            "qdq": self.plan.to_json(),
            "equalization": prepared.equalization.to_json() if prepared.equalization else None,
            "weight_rounding": prepared.rounding.to_json() if prepared.rounding else None,
            "refine": self.refined.to_json() if self.refined is not None else None,
            "sensitivity": [s.to_json() for s in self.sensitivity],
            "suggested_keep_fp": self.suggested_keep_fp if self.sensitivity else None,
            "seconds": {k: round(v, 3) for k, v in {**prepared.seconds, **self.seconds}.items()},
            "files": {k: str(v) for k, v in self.files.items()},
        }


def prepare(
    recipe: Recipe,
    images: Path,
    *,
    count: int | None = None,
    model_dir: Path | None = None,
    model: Path | None = None,
    passes: int = 2,
    progress: ProgressFn | None = None,
) -> Prepared:
    """Export the model, select the calibration images and gather their statistics.

    Args:
        recipe: the validated recipe.
        images: folder to choose calibration images from.
        count: images to choose (default: the recipe's ``quantize.count``).
        model_dir: folder for the recipe's relative model paths.
        model: a model file overriding the recipe's.
        passes: 2 (exact histogram range) or 1 (one onnxruntime pass, re-binned histograms;
            see :func:`~edgesdk.quant.stats.collect_stats`).
        progress: see :data:`ProgressFn`.

    Raises:
        ArtifactNotFound: the folder or model is missing.
        DatasetError: no usable images.
        GraphError: onnxruntime cannot run the model.
    """
    from edgesdk.export import export_recipe

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    exported = export_recipe(recipe, model_dir=model_dir, model=model, check_parity=False)
    seconds["export"] = time.perf_counter() - started
    report = (lambda phase: lambda done, total: progress(phase, done, total)) if progress else None
    selection = select_images(
        Path(images), count or recipe.quantize.count, progress=report and report("select")
    )
    seconds["select"] = selection.seconds
    input_name = recipe.input.name or exported.model.graph.input[0].name
    equalization = None
    if recipe.quantize.equalize:
        started = time.perf_counter()
        from edgesdk.quant.equalize import equalize

        strength = recipe.quantize.equalize_strength
        exported, equalization = _rewritten(
            recipe,
            exported,
            selection,
            input_name,
            EQUALIZE_IMAGES,
            lambda graph, feeds: equalize(graph, feeds, strength=strength),
        )
        seconds["equalize"] = time.perf_counter() - started
    rounding = None
    if recipe.quantize.weight_rounding == "gptq":
        from edgesdk.quant.gptq import IMAGES, round_weights

        started = time.perf_counter()
        keep = recipe.quantize.keep_fp  # keep_fp_auto chooses later, on the rounded model
        exported, rounding = _rewritten(
            recipe,
            exported,
            selection,
            input_name,
            IMAGES,
            lambda graph, feeds: round_weights(graph, feeds, keep_fp=keep),
        )
        seconds["weight_rounding"] = time.perf_counter() - started
    started = time.perf_counter()
    stats = collect_stats(
        exported.model,
        ImageBatches(selection.chosen, recipe),
        input_name=input_name,
        passes=passes,
        progress=report and report("statistics"),
    )
    seconds["statistics"] = time.perf_counter() - started
    return Prepared(recipe, exported, selection, stats, seconds, equalization, rounding)


_Rewrite = TypeVar("_Rewrite", "Equalization", "WeightRounding")


def _rewritten(
    recipe: Recipe,
    exported: ExportResult,
    selection: Selection,
    input_name: str,
    images: int,
    rewrite: Callable[[gs.Graph, Iterator[dict[str, np.ndarray]]], _Rewrite],
) -> tuple[ExportResult, _Rewrite]:
    """The export with its float model rewritten (equalised, GPTQ-rounded) by ``rewrite`` on the
    first ``images`` chosen images (whole batches); ``rewrite`` returns a result with ``graph``."""
    from edgesdk.graph.io import to_graph, to_model

    count = max(images, recipe.input.batch) // recipe.input.batch * recipe.input.batch
    batches = ImageBatches(selection.chosen[:count], recipe)
    result = rewrite(to_graph(exported.model), ({input_name: batch} for batch in batches))
    model = to_model(result.graph.cleanup(), like=exported.model)
    return dataclasses.replace(exported, model=model, path=None), result


def float_outputs(model: onnx.ModelProto, keep_fp: Sequence[str]) -> set[str]:
    """Output tensor names of the nodes kept in float: ``keep_fp`` nodes and the decoder tail."""
    from edgesdk.graph.io import to_graph

    graph = to_graph(model).toposort()
    tail = decoder_tail(graph)
    return {t.name for n in graph.nodes if id(n) in tail or is_kept(n, keep_fp) for t in n.outputs}


def qdq_model(
    model: onnx.ModelProto, thresholds: dict[str, float], keep_fp: Sequence[str] = ()
) -> tuple[onnx.ModelProto, QdqPlan]:
    """The Q/DQ model of ``model`` for activation ``thresholds`` (opset raised to 13 if lower).

    Raises:
        CalibrationError: a ``keep_fp`` name is not a node.
        GraphError: the opset conversion fails.
    """
    from edgesdk.graph.io import convert_opset, to_graph, to_model

    graph = to_graph(model)
    if int(graph.opset) < MIN_OPSET:
        graph = convert_opset(graph, MIN_OPSET)
    plan = plan_qdq(graph, thresholds, keep_fp=keep_fp)
    return to_model(apply_qdq(graph, plan), like=model), plan


def finish(prepared: Prepared, calibrator: str, trt: str = DEFAULT_TRT) -> CalibrationResult:
    """Thresholds, cache and Q/DQ model for one calibrator over prepared statistics.

    Raises:
        CalibrationError: unknown calibrator, bad ``trt``, or no tensor with a usable range.
    """
    get_calibrator(calibrator)
    version = trt_code(trt)
    started = time.perf_counter()
    quantize = prepared.recipe.quantize
    tensors = summarize(prepared.stats, calibrator, CalibratorOptions(percentile=quantize.percentile))
    thresholds = compute_thresholds(tensors)
    if not thresholds:
        raise CalibrationError(
            f"{prepared.recipe.name}: no tensor has a usable range (all zero, NaN or empty)",
            hint="check the images and the recipe's preprocess section",
        )
    # quantize.calibrator mixed and quantize.keep_fp_auto (edgesdk.quant.refine)
    refined = refine_thresholds(prepared, calibrator, thresholds)
    thresholds, tensors = refined.thresholds, resummarize(prepared, tensors, refined.thresholds)
    keep = float_outputs(prepared.exported.model, refined.keep_fp)
    cached = {name: t for name, t in thresholds.items() if name not in keep}
    cache = make_cache(cached, trt)
    seconds = {"thresholds": time.perf_counter() - started, **refined.seconds}
    started = time.perf_counter()
    qdq, plan = qdq_model(prepared.exported.model, thresholds, refined.keep_fp)
    qdq, refined.bias = refine_qdq(prepared, qdq)  # quantize.bias_correction
    seconds["qdq"] = time.perf_counter() - started
    return CalibrationResult(
        prepared, calibrator, version, tensors, cache, list(cached), qdq, plan, seconds, refined=refined
    )


def calibrate(
    recipe: Recipe,
    images: Path,
    *,
    count: int | None = None,
    calibrator: str | None = None,
    trt: str = DEFAULT_TRT,
    model_dir: Path | None = None,
    model: Path | None = None,
    output: Path | None = None,
    sensitivity: int = 0,
    passes: int = 2,
    progress: ProgressFn | None = None,
) -> CalibrationResult:
    """Calibrate a recipe's model for int8: :func:`prepare`, then :func:`finish`, then write.

    Args:
        recipe: the validated recipe.
        images: folder to choose calibration images from.
        count: images to choose (default: the recipe's ``quantize.count``).
        calibrator: ``entropy``, ``minmax``, ``percentile`` or ``mse`` (default: the recipe's).
        trt: the device's TensorRT for the cache header (``8.5``, ``8.6``, ``10.3``, ``8.6.1`` ...).
        model_dir: folder for the recipe's relative model paths.
        model: a model file overriding the recipe's.
        output: write calibration.cache, model.qdq.onnx and summary.json into this folder.
        sensitivity: also rank the quantised activations by the output error each causes
            alone (:mod:`edgesdk.quant.sensitivity`) and suggest ``keep_fp`` for the top
            ``sensitivity`` of them (0: skip; costs one onnxruntime session per tensor).
        passes: 2 (exact, default) or 1 (faster, re-binned histograms); see :func:`prepare`.
        progress: see :data:`ProgressFn` (plus phase ``sensitivity``, per tensor).

    Raises:
        CalibrationError: unknown calibrator or TensorRT version; no usable range.
        ArtifactNotFound, DatasetError, GraphError: see :func:`prepare`.
    """
    name = calibrator or recipe.quantize.calibrator
    get_calibrator(name)
    trt_code(trt)  # fail before the long part
    result = finish(
        prepare(
            recipe, images, count=count, model_dir=model_dir, model=model, passes=passes, progress=progress
        ),
        name,
        trt,
    )
    if sensitivity > 0:
        started = time.perf_counter()
        result.sensitivity = rank_sensitivity(
            result.prepared,
            compute_thresholds(result.tensors),
            keep_fp=recipe.quantize.keep_fp,
            progress=(lambda done, total: progress("sensitivity", done, total)) if progress else None,
        )
        result.suggest = sensitivity
        result.seconds["sensitivity"] = time.perf_counter() - started
    if output is not None:
        write_outputs(result, output)
    return result


def write_outputs(result: CalibrationResult, folder: Path) -> dict[str, Path]:
    """Write calibration.cache, model.qdq.onnx and summary.json into ``folder`` (created)."""
    from edgesdk.graph.io import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"cache": folder / CACHE_FILE, "qdq": folder / QDQ_FILE, "summary": folder / SUMMARY_FILE}
    files["cache"].write_bytes(result.cache)
    save_model(result.qdq, files["qdq"])
    if result.prepared.equalization is not None or result.prepared.rounding is not None:
        files["model"] = folder / MODEL_FILE
        save_model(result.prepared.exported.model, files["model"])
    elif (folder / MODEL_FILE).exists():
        (folder / MODEL_FILE).unlink()  # an earlier equalised run's model does not belong to this cache
    result.files = files
    files["summary"].write_text(json.dumps(result.summary_json(), indent=2) + "\n", encoding="utf-8")
    return files


def load_qdq(folder: Path, recipe: Recipe | None = None) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The Q/DQ model and summary from an earlier ``edgesdk calibrate -o FOLDER``.

    Raises:
        ArtifactNotFound: the folder lacks model.qdq.onnx or summary.json.
        CalibrationError: the folder was calibrated for another recipe.
    """
    from edgesdk.graph.io import load_model

    folder = Path(folder)
    for name in (QDQ_FILE, SUMMARY_FILE):
        if not (folder / name).is_file():
            raise ArtifactNotFound(
                f"{folder / name} does not exist",
                hint=f"run `edgesdk calibrate RECIPE --images DIR -o {folder}` first",
            )
    summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    if recipe is not None and summary.get("recipe") != recipe.name:
        raise CalibrationError(
            f"{folder} was calibrated for recipe {summary.get('recipe')!r}, not {recipe.name!r}",
            hint="point --calibration at the folder `edgesdk calibrate` wrote for this recipe",
        )
    return load_model(folder / QDQ_FILE), summary


def bundle_files(folder: Path, recipe: Recipe) -> list[tuple[str, Path]]:
    """What a deploy sends from an earlier ``edgesdk calibrate -o FOLDER``, as (role, path) pairs.

    Roles: ``calibration_cache`` (the device's TensorRT uses it when its version matches the
    header, skipping calibration), ``qdq_model`` (explicit quantization), and one
    ``calibration_image`` per chosen image (the device calibrates on them otherwise). With
    ``quantize.equalize`` or GPTQ rounding also ``model``: the float model the cache belongs to,
    which replaces the exported one in the bundle.

    Raises:
        ArtifactNotFound: the folder or a chosen image is missing.
        CalibrationError: the folder was calibrated for another recipe.
    """
    folder = Path(folder)
    _model, summary = load_qdq(folder, recipe)
    files: list[tuple[str, Path]] = [("qdq_model", folder / QDQ_FILE)]
    if (folder / MODEL_FILE).is_file():
        files.insert(0, ("model", folder / MODEL_FILE))
    if (folder / CACHE_FILE).is_file():
        files.append(("calibration_cache", folder / CACHE_FILE))
    images = summary.get("images") or {}
    root = Path(str(images.get("root", ".")))
    for rel in images.get("chosen", []):
        path = root / rel
        if not path.is_file():
            raise ArtifactNotFound(
                f"calibration image {path} (listed in {folder / SUMMARY_FILE}) does not exist",
                hint="calibrate again, or restore the image folder",
            )
        files.append(("calibration_image", path))
    return files
