"""Run a recipe's model with onnxruntime over a labelled folder and score it (COCO mAP).

Per image: read (and restore the aspect, see :mod:`edgesdk.eval.dataset`) → the device's
``preprocess`` → onnxruntime → the device's ``postprocess`` with the evaluation protocol
(score threshold 0.001, at most 300 detections per image, the recipe's NMS IoU), then
pycocotools scores everything at once. The run-time ``conf_threshold`` and
``max_detections`` of the recipe are not used: mAP integrates over all scores.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from edgesdk._lazy import require
from edgesdk.errors import DatasetError, ModelFormatError
from edgesdk.eval.dataset import Dataset, ImageRecord, load_dataset, to_coco_gt
from edgesdk.eval.metrics import MAX_DETS, coco_map, detections_to_coco
from edgesdk.recipe import Recipe

if TYPE_CHECKING:
    import onnx

__all__ = ["EVAL_SCORE_THRESHOLD", "EVAL_MAX_DETECTIONS", "EvalResult", "ProgressFn", "evaluate"]

log = logging.getLogger(__name__)

EVAL_SCORE_THRESHOLD = 0.001
EVAL_MAX_DETECTIONS = 300

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each image."""


@dataclass(frozen=True)
class EvalResult:
    """One model scored on one labelled folder.

    Attributes:
        model: the recipe name.
        data: the dataset folder.
        map50: COCO mAP at IoU 0.5, in [0, 1].
        map50_95: COCO mAP averaged over IoU 0.50:0.05:0.95, in [0, 1].
        images: images evaluated.
        seconds: wall time of the read → preprocess → inference → decode loop (s).
        images_per_s: ``images / seconds``.
        protocol: how it was scored (score threshold, max detections, NMS IoU, min size, ...).
        ap50_per_class: AP at IoU 0.5 per class name (classes with ground truth).
        num_gt: ground-truth boxes that count; ``num_ignored`` more are below ``min_size``.
        num_ignored: ground-truth boxes marked ignore (``iscrowd``).
        num_detections: detections scored.
        notes: one line per choice that affects the numbers (aspect restore, ignored boxes, ...).
    """

    model: str
    data: str
    map50: float
    map50_95: float
    images: int
    seconds: float
    images_per_s: float
    protocol: dict[str, Any]
    ap50_per_class: dict[str, float] = field(default_factory=dict)
    num_gt: int = 0
    num_ignored: int = 0
    num_detections: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json`` (``map50``, ``map50_95``, ``images`` first)."""
        data = dataclasses.asdict(self)
        head = {key: data.pop(key) for key in ("map50", "map50_95", "images")}
        return {**head, **data}


# --------------------------------------------------------------------------- pieces


def _session(
    recipe: Recipe,
    model_dir: Optional[Path],
    model: Optional[Path],
    override: Optional[onnx.ModelProto] = None,
) -> Any:
    """An onnxruntime CPU session over the exported model (fixes applied, parity not checked),
    or over ``override`` when given (e.g. an int8 Q/DQ model)."""
    ort = require("onnxruntime", feature="evaluating a model", hint="pip install onnxruntime")
    from edgesdk.export import export_recipe

    if override is not None:
        proto, source = override, "the given model"
    else:
        exported = export_recipe(recipe, model_dir=model_dir, model=model, check_parity=False)
        proto, source = exported.model, str(exported.source)
    try:
        return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise ModelFormatError(
            f"onnxruntime cannot load {recipe.name}'s exported model ({source}): {str(err).splitlines()[0]}",
            hint="the model does not fit the recipe (input size, format); check --model",
        ) from err


def _read_image(record: ImageRecord) -> np.ndarray:
    """The image as evaluated: HWC uint8 BGR, resized to ``record.resize_to`` when set."""
    import cv2

    image = cv2.imdecode(np.fromfile(str(record.path), np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # it decoded in load_dataset; it changed since
        raise DatasetError(f"cannot decode image {record.path}")
    if record.resize_to is not None and record.resize_to != (image.shape[1], image.shape[0]):
        shrink = record.resize_to[0] * record.resize_to[1] < image.shape[0] * image.shape[1]
        image = cv2.resize(
            image, record.resize_to, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    return image


def _batches(records: Sequence[ImageRecord], size: int) -> Iterator[Sequence[ImageRecord]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def check_classes(recipe: Recipe, dataset: Dataset) -> Dataset:
    """Fail when the labels use more classes than the model has; name unnamed classes after the model's."""
    from edgeagent.vision.classes import class_names

    model_names = class_names(recipe.postprocess.classes)
    if not dataset.single_class and len(dataset.names) > len(model_names):
        raise DatasetError(
            f"{dataset.root} has {len(dataset.names)} classes but {recipe.name} predicts {len(model_names)}",
            hint="evaluate a model trained on these classes (face recipes evaluate single-class)",
        )
    if dataset.names == tuple(str(i) for i in range(len(dataset.names))) and not dataset.single_class:
        return dataclasses.replace(dataset, names=tuple(model_names[: len(dataset.names)]))
    return dataset


def protocol(recipe: Recipe, dataset: Dataset) -> dict[str, Any]:
    """How a result was scored (``EvalResult.protocol``)."""
    return {
        "metric": "pycocotools COCOeval bbox",
        "score_threshold": EVAL_SCORE_THRESHOLD,
        "max_detections": EVAL_MAX_DETECTIONS,
        "max_dets": list(MAX_DETS),
        "iou_threshold": recipe.postprocess.iou_threshold,
        "single_class": dataset.single_class,
        "min_size": dataset.min_size,
        "aspect_restored": dataset.aspect_restored,
    }


def dataset_notes(dataset: Dataset) -> list[str]:
    notes = []
    if dataset.aspect_restored:
        notes.append(
            "images resized to their natural aspect from annotations.json: (W, round(W*orig_h/orig_w)); "
            "normalised labels stay exact"
        )
    if dataset.min_size > 0:
        notes.append(
            f"{dataset.num_ignored} of {dataset.num_boxes} ground-truth boxes have a side "
            f"< {dataset.min_size:g} px: marked iscrowd (neither missed nor penalising detections on them)"
        )
    if dataset.missing_labels:
        notes.append(f"{dataset.missing_labels} images without a label file count as images with no objects")
    return notes


# --------------------------------------------------------------------------- the loop


@dataclass
class _Model:
    """An onnxruntime session with what the loop needs; errors become :class:`ModelFormatError`."""

    session: Any
    name: str
    input_name: str
    output_names: list[str]
    batch: int
    input_hw: tuple[int, int]
    pre: dict[str, Any]
    post: dict[str, Any]

    @classmethod
    def create(cls, session: Any, recipe: Recipe) -> _Model:
        resolved = recipe.resolved()
        return cls(
            session=session,
            name=recipe.name,
            input_name=recipe.input.name or session.get_inputs()[0].name,
            output_names=[o.name for o in session.get_outputs()],
            batch=recipe.input.batch,
            input_hw=recipe.input.hw,
            pre=resolved["preprocess"],
            post=resolved["postprocess"],
        )

    def run(self, feed: np.ndarray, first: Path) -> dict[str, np.ndarray]:
        """Outputs by name for one (N, C, H, W) batch; ``first`` names its first image in errors."""
        try:
            arrays = self.session.run(self.output_names, {self.input_name: feed})
        except Exception as err:  # onnxruntime raises its own exception types (Fail, InvalidArgument, ...)
            raise ModelFormatError(
                f"onnxruntime failed running {self.name} on {first.name}: {str(err).splitlines()[0]}",
                hint="the model's input does not match the recipe's input section (check --model)",
            ) from err
        return dict(zip(self.output_names, arrays))

    def decode(self, outputs: dict[str, np.ndarray], transforms: Sequence[Any], first: Path) -> list[Any]:
        """Detections (source pixels, evaluation thresholds) for the images of one batch."""
        from edgeagent.vision.errors import VisionError
        from edgeagent.vision.postprocess import postprocess, split_batch

        try:
            return [
                postprocess(
                    per_image,
                    self.input_hw,
                    self.post,
                    transform,
                    conf_threshold=EVAL_SCORE_THRESHOLD,
                    max_detections=EVAL_MAX_DETECTIONS,
                )
                for per_image, transform in zip(split_batch(outputs), transforms)
            ]
        except VisionError as err:
            raise ModelFormatError(
                f"decoding {self.name}'s outputs (batch from {first.name}) failed: {err}",
                hint="the model does not match the recipe's postprocess section (check --model)",
            ) from err


def _detect_all(
    model: _Model, dataset: Dataset, progress: Optional[ProgressFn]
) -> tuple[list[dict[str, Any]], float]:
    """Detections (COCO result dicts) for every image, and the loop's wall time in seconds."""
    from edgeagent.vision.preprocess import preprocess

    results: list[dict[str, Any]] = []
    total, done = len(dataset.images), 0
    start = time.perf_counter()
    for chunk in _batches(dataset.images, model.batch):
        tensors, transforms = zip(*(preprocess(_read_image(r), model.input_hw, model.pre) for r in chunk))
        feed = np.zeros((model.batch,) + tensors[0].shape, np.float32)  # a short last batch is zero-padded
        feed[: len(chunk)] = np.stack(tensors)
        outputs = model.run(feed, chunk[0].path)
        for record, dets in zip(chunk, model.decode(outputs, transforms, chunk[0].path)):
            class_ids = np.zeros_like(dets.class_ids) if dataset.single_class else dets.class_ids
            keep = class_ids < len(dataset.names)  # classes absent from the labels cannot be scored
            results += detections_to_coco(
                record.image_id, dets.boxes[keep], dets.scores[keep], class_ids[keep]
            )
            done += 1
            if progress is not None:
                progress(done, total)
    return results, time.perf_counter() - start


# --------------------------------------------------------------------------- public


def evaluate(
    recipe: Recipe,
    data_dir: Path,
    *,
    model_dir: Optional[Path] = None,
    model: Optional[Path] = None,
    limit: Optional[int] = None,
    min_size: float = 0.0,
    progress: Optional[ProgressFn] = None,
    model_override: Optional[onnx.ModelProto] = None,
) -> EvalResult:
    """Score a recipe's model on a YOLO-format labelled folder with COCO mAP.

    Face recipes (``task: face``) evaluate single-class. The model is the recipe's, exported
    with its fixes (no parity check), run on onnxruntime's CPU provider.

    Args:
        recipe: the validated recipe.
        data_dir: the labelled folder (see :func:`edgesdk.eval.dataset.load_dataset`).
        model_dir: folder for the recipe's relative model paths (default: settings).
        model: a model file overriding the recipe's.
        limit: evaluate only the first ``limit`` images (sorted by path).
        min_size: ignore ground-truth boxes with a side below this many pixels.
        progress: called as ``progress(done, total)`` after each image.
        model_override: run this model instead of exporting the recipe's (same inputs and
            outputs, e.g. the int8 Q/DQ model from ``edgesdk calibrate``).

    Returns:
        The :class:`EvalResult`.

    Raises:
        ArtifactNotFound: the data folder or the model file does not exist.
        DatasetError: see :func:`~edgesdk.eval.dataset.load_dataset`; or more label classes
            than the model predicts.
        ModelFormatError: the model's outputs do not fit the recipe's decoder.
    """
    dataset = load_dataset(Path(data_dir), single_class=recipe.task == "face", min_size=min_size, limit=limit)
    dataset = check_classes(recipe, dataset)
    runner = _Model.create(_session(recipe, model_dir, model, model_override), recipe)
    detections, seconds = _detect_all(runner, dataset, progress)
    scores = coco_map(to_coco_gt(dataset), detections)
    images = len(dataset.images)
    log.info(
        "%s on %s: mAP50 %.4f, %d images in %.2f s", recipe.name, data_dir, scores.map50, images, seconds
    )
    return EvalResult(
        model=recipe.name,
        data=str(data_dir),
        map50=scores.map50,
        map50_95=scores.map50_95,
        images=images,
        seconds=seconds,
        images_per_s=images / seconds if seconds > 0 else float("inf"),
        protocol=protocol(recipe, dataset),
        ap50_per_class=scores.ap50_per_class,
        num_gt=scores.num_gt,
        num_ignored=dataset.num_ignored,
        num_detections=scores.num_detections,
        notes=dataset_notes(dataset),
    )
