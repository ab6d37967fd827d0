"""postprocess(): decode -> NMS -> top-k -> source pixels, and split_batch()."""

from __future__ import annotations

import numpy as np
import pytest

from edgeagent.vision.errors import OutputsError, ParamsError
from edgeagent.vision.postprocess import postprocess, split_batch
from edgeagent.vision.preprocess import Transform

PARAMS = {
    "decoder": "yolov5",
    "conf_threshold": 0.25,
    "iou_threshold": 0.45,
    "max_detections": 300,
    "class_agnostic": False,
    "classes": ["a", "b"],
}
# rows (cx, cy, w, h, obj, cls_a, cls_b) in input px
ROWS = np.array(
    [
        [50, 50, 20, 20, 0.9, 1.0, 0.0],  # a 0.9, box [40, 40, 60, 60]
        [52, 50, 20, 20, 0.8, 1.0, 0.0],  # a 0.8, IoU with row 0 = 360/440 = 0.82 -> suppressed
        [52, 50, 20, 20, 0.7, 0.0, 1.0],  # b 0.7, same place but another class -> kept unless agnostic
        [200, 200, 10, 10, 0.1, 1.0, 0.0],  # a 0.1: only with a low conf override
    ],
    np.float32,
)


def test_nms_per_class_and_order() -> None:
    dets = postprocess({"output0": ROWS}, (640, 640), PARAMS)
    assert dets.class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(dets.scores, [0.9, 0.7], rtol=1e-6)
    np.testing.assert_allclose(dets.boxes, [[40, 40, 60, 60], [42, 40, 62, 60]])


def test_class_agnostic() -> None:
    dets = postprocess({"output0": ROWS}, (640, 640), dict(PARAMS, class_agnostic=True))
    assert dets.class_ids.tolist() == [0]


def test_overrides_for_evaluation() -> None:
    dets = postprocess({"output0": ROWS}, (640, 640), PARAMS, conf_threshold=0.001)
    assert dets.scores.tolist() == pytest.approx([0.9, 0.7, 0.1])
    dets = postprocess({"output0": ROWS}, (640, 640), PARAMS, conf_threshold=0.001, max_detections=1)
    assert len(dets) == 1 and dets.scores[0] == pytest.approx(0.9)
    dets = postprocess({"output0": ROWS}, (640, 640), dict(PARAMS, max_detections=1))
    assert len(dets) == 1


def test_maps_to_source_pixels() -> None:
    # source 1280x720 letterboxed into 640x640: scale 0.5, pad y 140
    t = Transform(0.5, 0.5, 0.0, 140.0, 1280, 720)
    dets = postprocess({"output0": ROWS}, (640, 640), PARAMS, t)
    np.testing.assert_allclose(dets.boxes[0], [80, 0, 120, 0])  # y (40 - 140) / 0.5 = -200 -> clipped to 0
    rows = ROWS.copy()
    rows[0, :4] = [320, 320, 100, 50]
    dets = postprocess({"output0": rows}, (640, 640), PARAMS, t)
    np.testing.assert_allclose(dets.boxes[0], [540, 310, 740, 410])


def test_landmarks_follow_the_transform() -> None:
    params = {
        "decoder": "yunet",
        "conf_threshold": 0.5,
        "iou_threshold": 0.45,
        "max_detections": 300,
        "class_agnostic": False,
        "classes": "face",
        "strides": [8],
        "score": "product",
    }
    outputs = {
        "cls_8": np.array([[0.9]], np.float32),
        "obj_8": np.array([[1.0]], np.float32),
        "bbox_8": np.array([[0.5, 0.5, 0, 0]], np.float32),  # centre (4, 4), size 8
        "kps_8": np.full((1, 10), 0.25, np.float32),  # (2, 2)
    }
    t = Transform(0.5, 0.25, 1.0, 2.0, 100, 100)
    dets = postprocess(outputs, (8, 8), params, t)
    # input box [0, 0, 8, 8] -> ((0-1)/0.5, (0-2)/0.25, (8-1)/0.5, (8-2)/0.25) = (-2, -8, 14, 24), clipped
    np.testing.assert_allclose(dets.boxes, [[0, 0, 14, 24]])
    assert dets.landmarks is not None
    # input (2, 2) -> ((2-1)/0.5, (2-2)/0.25) = (2, 0); points are not clipped
    np.testing.assert_allclose(dets.landmarks[0], np.tile([[2.0, 0.0]], (5, 1)))


def test_no_candidates() -> None:
    dets = postprocess({"output0": ROWS[3:]}, (640, 640), PARAMS)
    assert len(dets) == 0 and dets.boxes.shape == (0, 4)


def test_missing_keys() -> None:
    with pytest.raises(ParamsError, match="'iou_threshold'"):
        postprocess({"output0": ROWS}, (640, 640), {k: v for k, v in PARAMS.items() if k != "iou_threshold"})
    with pytest.raises(ParamsError, match="'max_detections'"):
        postprocess({"output0": ROWS}, (640, 640), {k: v for k, v in PARAMS.items() if k != "max_detections"})


def test_split_batch() -> None:
    batch = {"a": np.arange(6).reshape(2, 3), "b": np.zeros((2, 4, 5))}
    parts = split_batch(batch)
    assert len(parts) == 2 and list(parts[1]) == ["a", "b"]
    assert parts[1]["a"].tolist() == [3, 4, 5] and parts[0]["b"].shape == (4, 5)


def test_split_batch_errors() -> None:
    with pytest.raises(OutputsError, match="batch size"):
        split_batch({"a": np.zeros((2, 3)), "b": np.zeros((3, 3))})
    with pytest.raises(OutputsError, match="no outputs"):
        split_batch({})
    with pytest.raises(OutputsError, match="scalar"):
        split_batch({"a": np.float32(1.0)})
