"""Evaluation: COCO-style mAP of a recipe's model on a YOLO-format labelled folder."""

from __future__ import annotations

from edgesdk.eval.dataset import Dataset, ImageRecord, load_dataset, to_coco_gt
from edgesdk.eval.metrics import MapResult, coco_map, detections_to_coco
from edgesdk.eval.runner import EvalResult, evaluate

__all__ = [
    "Dataset",
    "EvalResult",
    "ImageRecord",
    "MapResult",
    "coco_map",
    "detections_to_coco",
    "evaluate",
    "load_dataset",
    "to_coco_gt",
]
