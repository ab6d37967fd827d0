"""COCO mAP on hand-made ground truth and detections with known answers."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from edgesdk.errors import DatasetError, EdgeSdkInternalError
from edgesdk.eval.metrics import coco_map, detections_to_coco


def _gt(
    boxes: list[list[float]], cats: list[int] | None = None, crowd: list[int] | None = None
) -> dict[str, Any]:
    """One 640x480 image with xywh ``boxes``; categories 1 'a' and 2 'b'."""
    cats = cats or [1] * len(boxes)
    crowd = crowd or [0] * len(boxes)
    anns = [
        {"id": i + 1, "image_id": 1, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": z}
        for i, (b, c, z) in enumerate(zip(boxes, cats, crowd))
    ]
    return {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 640, "height": 480}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }


def _det(box: list[float], score: float, cat: int = 1) -> dict[str, Any]:
    return {"image_id": 1, "category_id": cat, "bbox": box, "score": score}


def test_perfect_detections_give_one() -> None:
    boxes = [[10.0, 10.0, 100.0, 100.0], [300.0, 200.0, 50.0, 80.0]]
    result = coco_map(_gt(boxes, cats=[1, 2]), [_det(boxes[0], 0.9, 1), _det(boxes[1], 0.8, 2)])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(1.0)
    assert result.ap50_per_class == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    assert result.num_gt == 2 and result.num_detections == 2


def test_shifted_box_matches_only_low_iou_thresholds() -> None:
    # GT 100x100; detection shifted 23 px right: IoU = 77/123 = 0.626 -> a hit at 0.50, 0.55, 0.60 only
    result = coco_map(_gt([[0.0, 0.0, 100.0, 100.0]]), [_det([23.0, 0.0, 100.0, 100.0], 0.9)])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(0.3)


def test_false_positive_ranked_first_lowers_ap() -> None:
    boxes = [[0.0, 0.0, 50.0, 50.0], [200.0, 200.0, 50.0, 50.0]]
    dets = [_det([400.0, 300.0, 50.0, 50.0], 0.9), _det(boxes[0], 0.8), _det(boxes[1], 0.7)]
    # precision along the ranking is 0/1, 1/2, 2/3; interpolated precision is 2/3 at every recall
    result = coco_map(_gt(boxes), dets)
    assert result.map50 == pytest.approx(2 / 3, abs=1e-6)


def test_empty_detections_give_zero() -> None:
    result = coco_map(_gt([[0.0, 0.0, 10.0, 10.0]]), [])
    assert result.map50 == 0.0 and result.map50_95 == 0.0
    assert result.ap50_per_class == {"a": 0.0}


def test_crowd_gt_neither_missed_nor_penalising() -> None:
    big, small = [0.0, 0.0, 100.0, 100.0], [300.0, 300.0, 8.0, 8.0]
    dets = [_det(small, 0.9), _det(big, 0.8)]
    ignored = coco_map(_gt([big, small], crowd=[0, 1]), dets)
    assert ignored.map50 == pytest.approx(1.0) and ignored.num_gt == 1
    absent = coco_map(_gt([big]), dets)  # the same detection on an unlabelled spot is a false positive
    assert absent.map50 == pytest.approx(0.5, abs=1e-6)


def test_only_300_detections_per_image_count() -> None:
    gt_box = [500.0, 400.0, 40.0, 40.0]
    dets = [_det([float(i), 0.0, 5.0, 5.0], 0.9) for i in range(300)] + [_det(gt_box, 0.5)]
    assert coco_map(_gt([gt_box]), dets).map50 == 0.0
    assert coco_map(_gt([gt_box]), dets[-1:] + dets[:299]).map50 > 0.0


def test_inputs_are_not_modified() -> None:
    gt, dets = _gt([[0.0, 0.0, 10.0, 10.0]]), [_det([0.0, 0.0, 10.0, 10.0], 0.5)]
    before = (copy.deepcopy(gt), copy.deepcopy(dets))
    coco_map(gt, dets)
    assert (gt, dets) == before


def test_no_pycocotools_output(capsys: pytest.CaptureFixture[str]) -> None:
    coco_map(_gt([[0.0, 0.0, 10.0, 10.0]]), [_det([0.0, 0.0, 10.0, 10.0], 0.5)])
    assert capsys.readouterr().out == ""


def test_all_gt_ignored_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match="no ground-truth"):
        coco_map(_gt([[0.0, 0.0, 10.0, 10.0]], crowd=[1]), [])


def test_unknown_image_is_an_internal_error() -> None:
    det = {"image_id": 7, "category_id": 1, "bbox": [0.0, 0.0, 1.0, 1.0], "score": 0.5}
    with pytest.raises(EdgeSdkInternalError):
        coco_map(_gt([[0.0, 0.0, 10.0, 10.0]]), [det])


def test_detections_to_coco_converts_xyxy_and_ids() -> None:
    out = detections_to_coco(3, np.array([[10, 20, 50, 60]], np.float32), np.array([0.5]), np.array([4]))
    assert out == [{"image_id": 3, "category_id": 5, "bbox": [10.0, 20.0, 40.0, 40.0], "score": 0.5}]
