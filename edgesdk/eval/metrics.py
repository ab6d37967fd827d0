"""COCO-style box mAP with pycocotools (the reference implementation COCO evaluators use).

Protocol: ``COCOeval`` with ``iouType="bbox"``, IoU thresholds 0.50:0.05:0.95, 101 recall
points, area range "all", at most 300 detections per image (``maxDets = [1, 10, 300]``).
mAP@0.5 and mAP@0.5:0.95 are read from the accumulated precision array exactly as
``COCOeval.summarize`` computes them (mean over categories that have ground truth),
without calling ``summarize`` and with pycocotools' prints captured, not shown.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from edgesdk.errors import DatasetError, EdgeSdkInternalError
from edgesdk.eval.dataset import CATEGORY_ID_OFFSET

__all__ = ["MAX_DETS", "MapResult", "coco_map", "detections_to_coco"]

MAX_DETS = (1, 10, 300)


@dataclass(frozen=True)
class MapResult:
    """Box mAP of one evaluation.

    Attributes:
        map50: AP at IoU 0.5, mean over categories with ground truth, in [0, 1].
        map50_95: AP averaged over IoU 0.50:0.05:0.95, mean over categories, in [0, 1].
        ap50_per_class: AP at IoU 0.5 per category name, for categories with ground truth.
        num_gt: ground-truth boxes that count (not ``iscrowd``).
        num_detections: detections given.
    """

    map50: float
    map50_95: float
    ap50_per_class: dict[str, float] = field(default_factory=dict)
    num_gt: int = 0
    num_detections: int = 0


def detections_to_coco(
    image_id: int, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray
) -> list[dict[str, Any]]:
    """One image's detections as COCO result dicts.

    Args:
        image_id: the COCO image id (``ImageRecord.image_id``).
        boxes: (N, 4) xyxy pixels of the evaluated image.
        scores: (N,) confidences.
        class_ids: (N,) class indices (category id = index + ``CATEGORY_ID_OFFSET``).

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.
    """
    out = []
    for box, score, cls in zip(
        np.asarray(boxes, np.float64).reshape(-1, 4).tolist(),
        np.asarray(scores, np.float64).reshape(-1).tolist(),
        np.asarray(class_ids).reshape(-1).tolist(),
    ):
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(cls) + CATEGORY_ID_OFFSET,
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                "score": score,
            }
        )
    return out


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else math.nan


def _check_inputs(gt: dict[str, Any], detections: Sequence[dict[str, Any]]) -> int:
    counted = sum(1 for a in gt.get("annotations", []) if not a.get("iscrowd", 0))
    if counted == 0:
        raise DatasetError(
            "no ground-truth boxes to evaluate (none given, or all ignored)",
            hint="check the labels, or lower --min-size",
        )
    image_ids = {img["id"] for img in gt.get("images", [])}
    cat_ids = {cat["id"] for cat in gt.get("categories", [])}
    for det in detections:
        if det["image_id"] not in image_ids or det["category_id"] not in cat_ids:
            raise EdgeSdkInternalError(
                f"detection for image {det['image_id']} / category {det['category_id']} "
                "is not in the ground truth"
            )
    return counted


def coco_map(
    gt: dict[str, Any], detections: Sequence[dict[str, Any]], *, max_dets: Sequence[int] = MAX_DETS
) -> MapResult:
    """COCO bbox mAP of ``detections`` against ``gt`` (neither is modified).

    Args:
        gt: COCO ground-truth dict (``images``, ``annotations`` with ``bbox``/``area``/
            ``iscrowd``, ``categories``), e.g. from :func:`edgesdk.eval.dataset.to_coco_gt`.
        detections: COCO results (``image_id``, ``category_id``, ``bbox`` xywh px, ``score``).
        max_dets: ``COCOeval.params.maxDets``; the last one is the per-image cap used for mAP.

    Returns:
        The :class:`MapResult`; empty ``detections`` give mAP 0.

    Raises:
        DatasetError: no ground-truth box counts (all absent or ``iscrowd``).
        EdgeSdkInternalError: a detection names an image or category not in ``gt``.
    """
    num_gt = _check_inputs(gt, detections)
    names = {cat["id"]: str(cat["name"]) for cat in gt["categories"]}
    if not detections:
        with_gt = {a["category_id"] for a in gt["annotations"] if not a.get("iscrowd", 0)}
        return MapResult(0.0, 0.0, {names[c]: 0.0 for c in sorted(with_gt)}, num_gt, 0)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress; keep stdout clean
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)  # COCOeval writes "ignore" keys into the annotations
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(d) for d in detections])
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.maxDets = list(max_dets)
        evaluator.evaluate()
        evaluator.accumulate()
    return _read_precision(evaluator, names, num_gt, len(detections))


def _read_precision(evaluator: Any, names: dict[int, str], num_gt: int, num_dets: int) -> MapResult:
    """mAP from ``evaluator.eval["precision"]`` [T, R, K, A, M], as ``summarize`` reads it."""
    params = evaluator.params
    precision = evaluator.eval["precision"]
    area = list(params.areaRngLbl).index("all")
    cap = len(params.maxDets) - 1
    at_cap = precision[:, :, :, area, cap]  # [T, R, K]
    t50 = int(np.argmin(np.abs(np.asarray(params.iouThrs) - 0.5)))
    per_class = {}
    for k, cat_id in enumerate(params.catIds):
        value = _mean_valid(at_cap[t50, :, k])
        if not math.isnan(value):
            per_class[names[cat_id]] = value
    return MapResult(_mean_valid(at_cap[t50]), _mean_valid(at_cap), per_class, num_gt, num_dets)
