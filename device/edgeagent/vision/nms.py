"""Greedy non-maximum suppression on xyxy boxes (pure numpy).

Convention (same as torchvision.ops.nms): boxes are continuous xyxy coordinates, area =
``(x2 - x1) * (y2 - y1)`` (no +1), and a box is suppressed when its IoU with a kept,
higher-scoring box is **strictly greater** than ``iou_threshold``. Equal scores keep input order.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from .errors import ParamsError


def _check(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ParamsError(f"nms: boxes must have shape (N, 4), got {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        raise ParamsError(f"nms: scores must have shape ({boxes.shape[0]},), got {scores.shape}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ParamsError(f"nms: iou_threshold must be within [0, 1], got {iou_threshold}")


def nms(
    boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float, max_output: Optional[int] = None
) -> np.ndarray:
    """Greedy NMS over all boxes (class-agnostic).

    Args:
        boxes_xyxy: (N, 4) xyxy boxes, any one pixel space.
        scores: (N,) scores; higher is better.
        iou_threshold: suppress boxes whose IoU with a kept box is > this (0..1).
        max_output: stop after this many kept boxes (None: no limit).

    Returns:
        (K,) int64 indices into the inputs of the kept boxes, by descending score.

    Raises:
        ParamsError: mismatched shapes or a threshold outside [0, 1].
    """
    boxes = np.asarray(boxes_xyxy, np.float64)
    scores = np.asarray(scores)
    _check(boxes, scores, iou_threshold)
    limit = boxes.shape[0] if max_output is None else max(0, int(max_output))
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    keep: List[int] = []
    # One iteration per KEPT box; each compares it with all remaining candidates at once.
    while order.size > 0 and len(keep) < limit:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0.0, inter / np.where(union > 0.0, union, 1.0), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    class_agnostic: bool = False,
    max_output: Optional[int] = None,
) -> np.ndarray:
    """NMS per class (boxes of different classes never suppress each other), or agnostic.

    Per-class NMS shifts each class's boxes by ``class_id * (span + 1)`` along both axes so
    that classes cannot overlap, then runs one :func:`nms`.

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores.
        class_ids: (N,) integer class ids.
        iou_threshold: IoU above which a lower-scoring box is suppressed (0..1).
        class_agnostic: one NMS over all classes instead of one per class.
        max_output: keep at most this many boxes in total (None: no limit).

    Returns:
        (K,) int64 indices of the kept boxes, by descending score.

    Raises:
        ParamsError: mismatched shapes or a threshold outside [0, 1].
    """
    boxes = np.asarray(boxes, np.float64)
    class_ids = np.asarray(class_ids)
    if class_ids.shape != (boxes.shape[0],):
        raise ParamsError(
            f"batched_nms: class_ids must have shape ({boxes.shape[0]},), got {class_ids.shape}"
        )
    if class_agnostic or boxes.shape[0] == 0:
        return nms(boxes, scores, iou_threshold, max_output)
    span = float(boxes.max() - boxes.min()) + 1.0
    shifted = boxes + (class_ids.astype(np.float64) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_output)
