"""Decoder registry: names, duplicates, lookup errors, and parameter/output validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgeagent.vision.decoders import DECODERS, decode, get_decoder, register_decoder
from edgeagent.vision.errors import OutputsError, ParamsError
from edgeagent.vision.types import Detections

BASE = {"conf_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 300, "class_agnostic": False}


def test_builtin_names() -> None:
    assert set(DECODERS) == {
        "yolov3",
        "yolov5",
        "yolov8",
        "yolox",
        "retinaface",
        "centerface",
        "yunet",
        "ultraface",
    }


def test_duplicate_name_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_decoder("yolov5")(lambda outputs, input_hw, params: Detections.empty())
    assert DECODERS["yolov5"].__module__.endswith("yolov5")


def test_register_and_use_a_new_decoder() -> None:
    @register_decoder("test-constant")
    def constant(outputs: Any, input_hw: Any, params: Any) -> Detections:
        return Detections(
            np.array([[1, 2, 3, 4]], np.float32), np.array([0.5], np.float32), np.zeros(1, np.int64)
        )

    try:
        dets = decode({}, (8, 8), {"decoder": "test-constant"})
        assert dets.boxes.tolist() == [[1, 2, 3, 4]]
    finally:
        del DECODERS["test-constant"]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown decoder 'yolov9'.*centerface.*yunet"):
        get_decoder("yolov9")


def test_missing_decoder_key() -> None:
    with pytest.raises(ParamsError, match="'decoder'"):
        decode({"o": np.zeros((1, 6), np.float32)}, (8, 8), BASE)


@pytest.mark.parametrize(
    "params, missing",
    [
        ({"decoder": "yolov5"}, "conf_threshold"),
        ({"decoder": "yolox", **BASE}, "strides"),
        ({"decoder": "yolov3", **BASE, "anchors": [[[1, 1]]]}, "scale_x_y"),
        ({"decoder": "yolov8", **BASE}, "dfl"),
        ({"decoder": "retinaface", **BASE}, "steps"),
        ({"decoder": "centerface", **BASE}, "stride"),
        ({"decoder": "yunet", **BASE}, "strides"),
        ({"decoder": "ultraface", **BASE}, "boxes_decoded"),
    ],
)
def test_missing_family_key_is_named(params: dict[str, Any], missing: str) -> None:
    table: dict[str, dict[str, np.ndarray]] = {
        "yolov5": {"o": np.zeros((1, 6), np.float32)},
        "yolox": {"o": np.zeros((1, 6), np.float32)},
        "yolov3": {"o": np.zeros((6, 1, 1), np.float32)},
        "yolov8": {"o": np.zeros((5, 1), np.float32)},
        "retinaface": {"o": np.zeros((1, 16), np.float32)},
        "centerface": {k: np.zeros((c, 1, 1), np.float32) for k, c in zip("hsol", (1, 2, 2, 10))},
        "yunet": {"cls_8": np.zeros((1, 1), np.float32)},
        "ultraface": {"s": np.zeros((1, 2), np.float32), "b": np.zeros((1, 4), np.float32)},
    }
    outputs = table[params["decoder"]]
    with pytest.raises(ParamsError, match=f"missing key '{missing}'"):
        decode(outputs, (8, 8), params)


def test_yolox_row_count_mismatch() -> None:
    params = {"decoder": "yolox", **BASE, "strides": [8, 16, 32]}
    with pytest.raises(OutputsError, match=r"3549 rows .* give 2100 grid cells"):
        decode({"output": np.zeros((3549, 85), np.float32)}, (320, 320), params)


def test_yolov3_head_count_mismatch() -> None:
    params = {"decoder": "yolov3", **BASE, "anchors": [[[1, 1]], [[2, 2]]], "scale_x_y": 1.0}
    with pytest.raises(OutputsError, match="1 outputs but postprocess.anchors lists 2 heads"):
        decode({"o": np.zeros((6, 2, 2), np.float32)}, (64, 64), params)


def test_yolov3_channels_do_not_split_into_anchors() -> None:
    params = {"decoder": "yolov3", **BASE, "anchors": [[[1, 1], [2, 2]]], "scale_x_y": 1.0}
    with pytest.raises(OutputsError, match="does not split into 2 anchors"):
        decode({"o": np.zeros((7, 2, 2), np.float32)}, (64, 64), params)


def test_yolov8_dfl_head_size_must_match_stride() -> None:
    params = {"decoder": "yolov8", **BASE, "dfl": True, "reg_max": 4, "strides": [16]}
    with pytest.raises(OutputsError, match="does not match stride 16"):
        decode({"p": np.zeros((17, 2, 2), np.float32)}, (16, 16), params)


def test_retinaface_prior_count_mismatch() -> None:
    params = {
        "decoder": "retinaface",
        **BASE,
        "steps": [8, 16, 32],
        "min_sizes": [[16, 32], [64, 128], [256, 512]],
        "variances": [0.1, 0.2],
        "conf_softmax": True,
    }
    with pytest.raises(OutputsError, match="16800 output rows .* give 4200 priors"):
        decode({"o": np.zeros((16800, 16), np.float32)}, (320, 320), params)


def test_ultraface_needs_scores_and_boxes() -> None:
    params = {"decoder": "ultraface", **BASE, "boxes_decoded": True}
    with pytest.raises(OutputsError, match=r"scores \[N, 2\] and boxes \[N, 4\]"):
        decode({"a": np.zeros((3, 4), np.float32), "b": np.zeros((3, 4), np.float32)}, (8, 8), params)


def test_centerface_wrong_order() -> None:
    params = {"decoder": "centerface", **BASE, "stride": 4}
    maps = {k: np.zeros((c, 2, 2), np.float32) for k, c in zip("hsol", (2, 1, 2, 10))}
    with pytest.raises(OutputsError, match="heatmap"):
        decode(maps, (8, 8), params)


def test_conf_threshold_out_of_range() -> None:
    params = {"decoder": "yolov5", **BASE, "conf_threshold": 1.5}
    with pytest.raises(ParamsError, match="conf_threshold"):
        decode({"o": np.zeros((1, 6), np.float32)}, (8, 8), params)


def test_errors_are_value_errors() -> None:
    assert issubclass(ParamsError, ValueError) and issubclass(OutputsError, ValueError)
