"""NMS on hand-made boxes with exact expectations."""

from __future__ import annotations

import numpy as np
import pytest

from edgeagent.vision.errors import ParamsError
from edgeagent.vision.nms import batched_nms, nms

# A and B overlap with IoU 90/110 = 0.818; A and C: 50/150 = 0.333; D is far away.
BOXES = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
SCORES = np.array([0.9, 0.8, 0.7, 0.95], np.float32)


def test_greedy_order_and_suppression() -> None:
    keep = nms(BOXES, SCORES, 0.5)
    assert keep.dtype == np.int64
    assert keep.tolist() == [3, 0, 2]  # B suppressed by A; C kept (0.333 <= 0.5)


def test_lower_threshold_suppresses_more() -> None:
    assert nms(BOXES, SCORES, 0.3).tolist() == [3, 0]


def test_suppressed_box_does_not_suppress() -> None:
    # B (suppressed by A) would suppress C (IoU 60/140 = 0.43 > 0.4), but it is gone, and A-C is 0.333.
    assert nms(BOXES, SCORES, 0.4).tolist() == [3, 0, 2]


def test_iou_equal_to_threshold_is_kept() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)  # IoU exactly 0.5
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.49).tolist() == [0]


def test_max_output() -> None:
    assert nms(BOXES, SCORES, 0.5, max_output=2).tolist() == [3, 0]
    assert nms(BOXES, SCORES, 0.5, max_output=0).tolist() == []


def test_equal_scores_keep_input_order() -> None:
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [10, 10, 11, 11]], np.float32)
    assert nms(boxes, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0, 1, 2]


def test_empty_and_degenerate() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    # zero-area boxes never suppress anything (IoU defined as 0)
    boxes = np.array([[1, 1, 1, 1], [1, 1, 1, 1]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8]), 0.0).tolist() == [0, 1]


def test_bad_input() -> None:
    with pytest.raises(ParamsError, match=r"\(N, 4\)"):
        nms(np.zeros((3, 5)), np.zeros(3), 0.5)
    with pytest.raises(ParamsError, match="scores"):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(ParamsError, match="iou_threshold"):
        nms(np.zeros((3, 4)), np.zeros(3), 1.5)


def test_class_aware_vs_agnostic() -> None:
    boxes = BOXES[:2]  # IoU 0.818
    scores = SCORES[:2]
    classes = np.array([0, 1])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, classes, 0.5, class_agnostic=True).tolist() == [0]
    assert batched_nms(boxes, scores, np.array([2, 2]), 0.5).tolist() == [0]


def test_class_offsets_handle_negative_coordinates() -> None:
    # A shift of (max + 1) = 11 would make these overlap with IoU 0.68 and suppress class 1.
    boxes = np.array([[-100, -100, 10, 10], [-100, -100, 10, 10]], np.float32)
    assert batched_nms(boxes, np.array([0.9, 0.8]), np.array([0, 1]), 0.45).tolist() == [0, 1]


def test_batched_max_output_counts_all_classes() -> None:
    classes = np.array([0, 0, 1, 1])
    assert batched_nms(BOXES, SCORES, classes, 0.5, max_output=2).tolist() == [3, 0]
    assert batched_nms(BOXES, SCORES, classes, 0.5).tolist() == [3, 0, 2]  # B suppressed by A (both class 0)


def test_batched_shape_check() -> None:
    with pytest.raises(ParamsError, match="class_ids"):
        batched_nms(BOXES, SCORES, np.array([0, 1]), 0.5)
