"""Score detections made ON a device against a labelled folder.

``edgesdk run RECIPE --device D --source <images folder> --conf 0.001 --max-det 300 --sink
dets.jsonl`` writes one JSON line per frame; for image sources each line names its ``file``.
:func:`evaluate_detections` matches those names to the folder's images and scores them with
the same COCO protocol as :func:`edgesdk.eval.evaluate` — so the real engine (TensorRT int8 on
a Jetson) is measured, not a simulation of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgesdk.errors import ArtifactNotFound, DatasetError
from edgesdk.eval.dataset import Dataset, ImageRecord, load_dataset, to_coco_gt
from edgesdk.eval.metrics import coco_map, detections_to_coco
from edgesdk.eval.runner import EVAL_SCORE_THRESHOLD, EvalResult, check_classes, dataset_notes, protocol
from edgesdk.recipe import Recipe

_HOW = "run the device on the images folder: `edgesdk run RECIPE --source DIR/images/… --conf 0.001 --sink dets.jsonl`"


def read_detections(path: Path) -> dict[str, dict[str, Any]]:
    """Detections by image file name from a JSON-lines file (the first line of a name wins).

    Raises:
        ArtifactNotFound: no such file.
        DatasetError: a line is not JSON, has no ``detections``, or names no ``file`` (a video
            or camera run).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ArtifactNotFound(f"detections file {path} does not exist", hint=_HOW) from None
    found: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            dets = record["detections"]
        except (ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{path}:{number} is not a detections line ({err})", hint=_HOW) from err
        name = record.get("file")
        if not name:
            raise DatasetError(
                f"{path}:{number} names no image file: the detections come from a video or a camera",
                hint=_HOW,
            )
        found.setdefault(str(name), dets)
    return found


def _by_name(dataset: Dataset) -> dict[str, ImageRecord]:
    """The dataset's images by file name; a name two images share cannot be matched."""
    records: dict[str, ImageRecord] = {}
    for record in dataset.images:
        if record.path.name in records:
            raise DatasetError(
                f"{dataset.root} has two images named {record.path.name}: device detections name files only",
                hint="evaluate one split folder at a time (--data pointing at a folder with unique names)",
            )
        records[record.path.name] = record
    return records


def _results(record: ImageRecord, dets: dict[str, Any], dataset: Dataset) -> list[dict[str, Any]]:
    boxes = np.asarray(dets.get("boxes") or [], np.float64).reshape(-1, 4)
    scores = np.asarray(dets.get("scores") or [], np.float64).reshape(-1)
    class_ids = np.asarray(dets.get("class_ids") or [], np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(class_ids):
        raise DatasetError(f"detections for {record.path.name}: boxes, scores and class_ids differ in length")
    if dataset.single_class:
        class_ids = np.zeros_like(class_ids)
    keep = class_ids < len(dataset.names)  # classes absent from the labels cannot be scored
    return detections_to_coco(record.image_id, boxes[keep], scores[keep], class_ids[keep])


def evaluate_detections(
    recipe: Recipe,
    data_dir: Path,
    detections: Path,
    *,
    limit: Optional[int] = None,
    min_size: float = 0.0,
) -> EvalResult:
    """Score a device's detections (``--sink dets.jsonl`` on an images folder) with COCO mAP.

    Images of ``data_dir`` without a line in ``detections`` count as images where nothing was
    found (a note says how many); lines naming no image of the folder are ignored.

    Raises:
        ArtifactNotFound / DatasetError: see :func:`read_detections` and
            :func:`~edgesdk.eval.dataset.load_dataset`; also no line names an image of the
            folder, or the folder resizes its images for evaluation (``annotations.json``: the
            device saw the files as they are, so its boxes are in other pixels).
    """
    dataset = load_dataset(Path(data_dir), single_class=recipe.task == "face", min_size=min_size, limit=limit)
    dataset = check_classes(recipe, dataset)
    if dataset.aspect_restored:
        raise DatasetError(
            f"{dataset.root} is evaluated at other sizes than its files (annotations.json), "
            "so detections made on the files cannot be scored against it",
            hint="score device detections on a folder without annotations.json (e.g. COCO)",
        )
    found = read_detections(detections)
    records = _by_name(dataset)
    matched = [name for name in found if name in records]
    if not matched:
        raise DatasetError(f"no line of {detections} names an image of {dataset.root}", hint=_HOW)
    results: list[dict[str, Any]] = []
    lowest = 1.0
    for name in matched:
        results += _results(records[name], found[name], dataset)
        lowest = min([lowest, *(found[name].get("scores") or [])])
    scores = coco_map(to_coco_gt(dataset), results)
    notes = dataset_notes(dataset)
    notes.append(f"detections made on the device, read from {detections}")
    if len(matched) < len(dataset.images):
        notes.append(f"{len(dataset.images) - len(matched)} images have no line there: nothing found in them")
    if lowest > 0.05:
        notes.append(
            f"the lowest score there is {lowest:.2f}: mAP counts low-scoring detections too, so run with "
            f"--conf {EVAL_SCORE_THRESHOLD} to compare with `edgesdk eval` on the host"
        )
    return EvalResult(
        model=f"{recipe.name} (device)",
        data=str(data_dir),
        map50=scores.map50,
        map50_95=scores.map50_95,
        images=len(dataset.images),
        seconds=0.0,
        images_per_s=0.0,
        protocol=dict(
            protocol(recipe, dataset), score_threshold="as run on the device", detections=str(detections)
        ),
        ap50_per_class=scores.ap50_per_class,
        num_gt=scores.num_gt,
        num_ignored=dataset.num_ignored,
        num_detections=scores.num_detections,
        notes=notes,
    )
