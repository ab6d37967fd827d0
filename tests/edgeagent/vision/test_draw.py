"""Drawing: boxes in per-class colours, labels, landmark dots, the stats panel."""

from __future__ import annotations

import numpy as np
import pytest

from edgeagent.vision.draw import LANDMARK_COLOURS, draw_detections, draw_stats, palette
from edgeagent.vision.errors import ParamsError
from edgeagent.vision.types import Detections

NAMES = ["person", "car", "dog"]


def _dets(boxes: list, ids: list, landmarks: np.ndarray | None = None) -> Detections:
    n = len(boxes)
    return Detections(
        np.asarray(boxes, np.float32).reshape(n, 4),
        np.full(n, 0.87, np.float32),
        np.asarray(ids, np.int64),
        landmarks,
    )


def test_palette_is_stable_distinct_and_read_only() -> None:
    colours = palette(80)
    assert colours.shape == (80, 3) and colours.dtype == np.uint8
    assert np.array_equal(colours, palette(80))
    assert len({tuple(c) for c in colours[:20]}) == 20
    assert colours.max(axis=1).min() >= 200  # bright enough to see on dark and light frames
    with pytest.raises(ValueError):
        colours[0, 0] = 1


def test_boxes_have_their_class_colour_and_the_input_is_untouched() -> None:
    image = np.zeros((360, 480, 3), np.uint8)
    dets = _dets([[100, 120, 200, 300], [260, 60, 400, 200]], [0, 1])
    out = draw_detections(image, dets, NAMES, thickness=2)
    assert not image.any() and out is not image
    colours = palette(len(NAMES))
    assert tuple(out[210, 100]) == tuple(colours[0])  # left edge of box 0
    assert tuple(out[130, 400]) == tuple(colours[1])  # right edge of box 1
    assert not out[200:290, 110:190].any()  # inside box 0, below its label: untouched
    assert tuple(colours[0]) != tuple(colours[1])


def test_label_sits_above_the_box_with_the_class_colour_as_background() -> None:
    out = draw_detections(np.zeros((300, 300, 3), np.uint8), _dets([[50, 100, 250, 250]], [2]), NAMES)
    band = out[86:99, 51:100].reshape(-1, 3)  # the label: 14 px above the top edge (y = 100)
    colour = palette(len(NAMES))[2]
    assert (band == colour).all(axis=1).mean() > 0.3  # the filled label background around the text
    assert (band.sum(axis=1) < 60).any()  # with dark text on it


def test_label_moves_inside_when_the_box_touches_the_top() -> None:
    out = draw_detections(np.zeros((200, 200, 3), np.uint8), _dets([[20, 0, 180, 150]], [0]), NAMES)
    assert (out[1:13, 21:60] == palette(3)[0]).all(axis=2).mean() > 0.3


def test_inplace_draws_on_the_given_image() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    out = draw_detections(image, _dets([[10, 30, 90, 90]], [0]), NAMES, inplace=True)
    assert out is image and image.any()


def test_landmarks_are_dots_in_landmark_colours() -> None:
    lms = np.array([[[60, 70], [100, 70], [80, 90], [65, 110], [95, 110]]], np.float32)
    dets = _dets([[40, 40, 120, 140]], [0], lms)
    out = draw_detections(np.zeros((200, 200, 3), np.uint8), dets, ["face"], thickness=2)
    for k, (x, y) in enumerate(lms[0].astype(int)):
        assert tuple(out[y, x]) == tuple(LANDMARK_COLOURS[k])
        assert tuple(out[y + 2, x]) == tuple(LANDMARK_COLOURS[k])  # a disc, not a single pixel
    plain = draw_detections(np.zeros((200, 200, 3), np.uint8), dets, ["face"], landmarks=False, thickness=2)
    assert not plain[90, 80].any()


def test_out_of_frame_boxes_landmarks_and_unknown_classes_do_not_crash() -> None:
    lms = np.array([[[-50, 10], [500, 10], [10, -5], [10, 10], [15, 15]]], np.float32)
    dets = _dets([[-30, -30, 1000, 1000]], [42], lms)
    out = draw_detections(np.zeros((64, 64, 3), np.uint8), dets, NAMES)
    assert out.shape == (64, 64, 3) and out.any()


def test_no_detections_returns_an_unchanged_copy() -> None:
    image = np.full((10, 10, 3), 7, np.uint8)
    out = draw_detections(image, Detections.empty(5), NAMES)
    assert out is not image and np.array_equal(out, image)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32)])
def test_bad_images_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ParamsError, match="uint8 BGR"):
        draw_detections(bad, Detections.empty(), NAMES)


def test_stats_panel_darkens_the_corner_and_writes_text() -> None:
    image = np.full((432, 768, 3), 200, np.uint8)
    out = draw_stats(image, 29.97, {"capture": 1.2, "preprocess": 2.5, "infer": 30.1, "postprocess": 0.8})
    assert out is image
    panel = out[:120, :150]
    assert (panel == 100).all(axis=2).mean() > 0.5  # halved background
    assert (panel[:, :, 1] > 200).any()  # the green FPS line / white text
    assert (out[300:, 400:] == 200).all()  # the rest untouched


def test_stats_panel_without_fps_and_on_a_tiny_image() -> None:
    out = draw_stats(np.zeros((40, 60, 3), np.uint8), None, {"infer": 1.0}, inplace=False)
    assert out.shape == (40, 60, 3) and out.any()
