"""Pre-processing: resize geometry, the inverse mapping, colour order and normalisation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeagent.vision.errors import ParamsError
from edgeagent.vision.preprocess import (
    Preprocessor,
    Transform,
    preprocess,
    preprocess_batch,
    resize_to_input,
)

PARAMS = {
    "resize": "letterbox",
    "pad_value": 114.0,
    "color": "rgb",
    "scale": 1.0 / 255.0,
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
    "interpolation": "linear",
}


def _imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return image


def _image(w: int, h: int, value: int = 200) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


class TestGeometry:
    def test_letterbox_odd_padding_matches_yolov5_rounding(self) -> None:
        # 100x36 -> 64x64: r = 0.64, resized 64 x round(23.04) = 23, dh = 41/2 = 20.5,
        # top = round(20.5 - 0.1) = 20, bottom = round(20.5 + 0.1) = 21.
        out, t = resize_to_input(_image(100, 36), (64, 64), "letterbox", 114)
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8
        assert t == Transform(0.64, 23 / 36, 0.0, 20.0, 100, 36)
        rows = out[:, 10, 0]
        assert (rows[:20] == 114).all() and (rows[20:43] == 200).all() and (rows[43:] == 114).all()

    def test_letterbox_bus_numbers_from_the_yolov5_readme(self, sample_images: dict[str, Path]) -> None:
        image = _imread(sample_images["bus"])
        assert image.shape[:2] == (1080, 810)
        out, t = resize_to_input(image, (640, 640), "letterbox", 114)
        assert round(t.scale_x, 4) == round(t.scale_y, 4) == 0.5926
        assert (t.pad_x, t.pad_y) == (80.0, 0.0)
        assert (out[:, :80] == 114).all() and (out[:, 560:] == 114).all()
        assert not (out[:, 80:560] == 114).all()

    def test_letterbox_zidane(self, sample_images: dict[str, Path]) -> None:
        image = _imread(sample_images["zidane"])
        _, t = resize_to_input(image, (640, 640), "letterbox", 114)
        assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (0.5, 0.5, 0.0, 140.0)

    def test_top_left_pad(self) -> None:
        # r = min(64/36, 64/100) = 0.64; resized int(64.0) x int(23.04) = 64 x 23 at the top-left.
        out, t = resize_to_input(_image(100, 36), (64, 64), "top-left-pad", 0)
        assert t == Transform(0.64, 23 / 36, 0.0, 0.0, 100, 36)
        assert (out[:23] == 200).all() and (out[23:] == 0).all()

    def test_top_left_pad_truncates_like_yolox_letterbox_rounds_like_yolov5(self) -> None:
        # 7x2 into 10x10: r = 10/7, h * r = 2.857: YOLOX int() -> 2 rows, YOLOv5 round() -> 3 rows
        _, t = resize_to_input(_image(7, 2), (10, 10), "top-left-pad", 0)
        assert (t.scale_x * 7, t.scale_y * 2) == pytest.approx((10, 2))
        _, t = resize_to_input(_image(7, 2), (10, 10), "letterbox", 0)
        assert (t.scale_x * 7, t.scale_y * 2, t.pad_y) == pytest.approx((10, 3, 3))

    def test_stretch(self) -> None:
        out, t = resize_to_input(_image(100, 36), (64, 32), "stretch", 0)
        assert out.shape == (64, 32, 3) and (out == 200).all()
        assert t == Transform(0.32, 64 / 36, 0.0, 0.0, 100, 36)

    def test_same_size_is_not_resampled(self) -> None:
        image = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
        out, t = resize_to_input(image, (32, 48), "letterbox", 114)
        assert np.array_equal(out, image) and (t.scale_x, t.pad_x, t.pad_y) == (1.0, 0.0, 0.0)

    @pytest.mark.parametrize("mode", ["letterbox", "top-left-pad", "stretch"])
    def test_round_trip_of_a_known_box(self, mode: str) -> None:
        _, t = resize_to_input(_image(100, 36), (64, 64), mode, 0)
        source = np.array([[10.0, 5.0, 50.0, 30.0]], np.float32)
        gain = np.array([t.scale_x, t.scale_y] * 2, np.float32)
        pad = np.array([t.pad_x, t.pad_y] * 2, np.float32)
        np.testing.assert_allclose(t.boxes_to_source(source * gain + pad), source, atol=1e-4)

    def test_letterbox_box_to_source_by_hand(self) -> None:
        # scale (0.64, 23/36), pad (0, 20):
        # input (6.4, 20 + 23/36*9, 32, 20 + 23/36*27) -> source (10, 9, 50, 27)
        _, t = resize_to_input(_image(100, 36), (64, 64), "letterbox", 0)
        box = np.array([[6.4, 20 + 23 / 36 * 9, 32.0, 20 + 23 / 36 * 27]])
        np.testing.assert_allclose(t.boxes_to_source(box), [[10, 9, 50, 27]], atol=1e-4)

    def test_boxes_are_clipped_points_are_not(self) -> None:
        t = Transform(0.5, 0.5, 10.0, 0.0, 100, 80)
        boxes = t.boxes_to_source(np.array([[0.0, -4.0, 70.0, 50.0]]))
        assert boxes.dtype == np.float32
        np.testing.assert_allclose(boxes, [[0, 0, 100, 80]])
        pts = t.points_to_source(np.array([[[0.0, -4.0], [20.0, 10.0]]]))
        np.testing.assert_allclose(pts, [[[-20, -8], [20, 20]]])

    def test_bad_mode_and_interpolation(self) -> None:
        with pytest.raises(ParamsError, match="resize mode 'crop'"):
            resize_to_input(_image(4, 4), (8, 8), "crop", 0)
        with pytest.raises(ParamsError, match="interpolation 'lanczos'"):
            resize_to_input(_image(4, 4), (8, 8), "letterbox", 0, "lanczos")
        with pytest.raises(ParamsError, match="non-empty"):
            resize_to_input(np.zeros((0, 4, 3), np.uint8), (8, 8), "letterbox", 0)
        with pytest.raises(ParamsError, match="uint8"):
            resize_to_input(np.zeros((4, 4, 3), np.float32), (8, 8), "letterbox", 0)


class TestTensor:
    def test_colour_order_and_normalisation(self) -> None:
        image = np.zeros((2, 2, 3), np.uint8)
        image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # B, G, R
        params = dict(PARAMS, resize="stretch", scale=2.0, mean=[1.0, 2.0, 3.0], std=[1.0, 2.0, 4.0])
        rgb, _ = preprocess(image, (2, 2), params)
        assert rgb.shape == (3, 2, 2) and rgb.dtype == np.float32 and rgb.flags.c_contiguous
        # channel c = (pixel * 2 - mean[c]) / std[c] in R, G, B order
        np.testing.assert_allclose(rgb[:, 0, 0], [(60 - 1) / 1, (40 - 2) / 2, (20 - 3) / 4])
        bgr, _ = preprocess(image, (2, 2), dict(params, color="bgr"))
        np.testing.assert_allclose(bgr[:, 1, 1], [(20 - 1) / 1, (40 - 2) / 2, (60 - 3) / 4])

    def test_pad_value_goes_through_the_normalisation(self) -> None:
        tensor, t = preprocess(_image(100, 36), (64, 64), PARAMS)
        assert t.pad_y == 20.0
        np.testing.assert_allclose(tensor[:, 0, 0], 114 / 255, rtol=1e-6)
        np.testing.assert_allclose(tensor[:, 30, 30], 200 / 255, rtol=1e-6)

    def test_matches_a_plain_reference(self) -> None:
        image = np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        tensor, _ = preprocess(image, (64, 64), dict(PARAMS, mean=mean, std=std))
        padded, _ = resize_to_input(image, (64, 64), "letterbox", 114)
        rgb = padded[:, :, ::-1].astype(np.float64) / 255.0
        want = ((rgb - np.array(mean)) / np.array(std)).transpose(2, 0, 1)
        np.testing.assert_allclose(tensor, want, atol=1e-5)

    def test_grey_image_gives_one_channel(self) -> None:
        tensor, _ = preprocess(np.full((4, 4), 51, np.uint8), (4, 4), PARAMS)
        assert tensor.shape == (1, 4, 4)
        np.testing.assert_allclose(tensor, 0.2, rtol=1e-6)

    def test_missing_key_is_named(self) -> None:
        params = {k: v for k, v in PARAMS.items() if k != "color"}
        with pytest.raises(ParamsError, match="missing key 'color'"):
            preprocess(_image(4, 4), (8, 8), params)

    def test_batch(self) -> None:
        batch, transforms = preprocess_batch([_image(100, 36), _image(20, 40, 10)], (64, 64), PARAMS)
        assert batch.shape == (2, 3, 64, 64) and batch.dtype == np.float32
        assert transforms[0].pad_y == 20.0 and transforms[1].pad_x == 16.0
        single, _ = preprocess(_image(20, 40, 10), (64, 64), PARAMS)
        np.testing.assert_array_equal(batch[1], single)
        with pytest.raises(ParamsError, match="at least one"):
            preprocess_batch([], (64, 64), PARAMS)


class TestPreprocessor:
    def _reference(self, image: np.ndarray, input_hw: tuple, params: dict) -> np.ndarray:
        padded, _ = resize_to_input(image, input_hw, params["resize"], params["pad_value"])
        if padded.ndim == 2:
            padded = padded[:, :, None]
        if params["color"] == "rgb" and padded.shape[2] == 3:
            padded = padded[:, :, ::-1]
        a = params["scale"] / np.array(params["std"], np.float64)[: padded.shape[2]]
        b = (
            np.array(params["mean"], np.float64)[: padded.shape[2]]
            / np.array(params["std"])[: padded.shape[2]]
        )
        return (padded.astype(np.float64) * a - b).transpose(2, 0, 1)

    def test_reused_buffers_match_fresh_ones_when_the_frame_size_changes(self) -> None:
        rng = np.random.default_rng(3)
        params = dict(PARAMS, pad_value=117.0, color="bgr", scale=1.0, mean=[104.0, 117.0, 123.0])
        pre = Preprocessor((64, 64), params, ring=2)
        # landscape, portrait, landscape again, square, grey: each size changes the border
        sizes = [(100, 36), (30, 80), (100, 36), (64, 64), (50, 40)]
        for i, (w, h) in enumerate(sizes):
            shape = (h, w) if i == 4 else (h, w, 3)
            image = rng.integers(0, 255, shape, dtype=np.uint8)
            got, t = pre(image)
            want, t_want = preprocess(image, (64, 64), params)
            assert t == t_want
            np.testing.assert_array_equal(got, want)
            np.testing.assert_allclose(got, self._reference(image, (64, 64), params), atol=1e-4)

    def test_resize_and_split_scratch_is_kept_and_the_frame_left_alone(self) -> None:
        rng = np.random.default_rng(5)
        pre = Preprocessor((64, 64), dict(PARAMS, color="rgb"), ring=2)
        frames = [rng.integers(0, 255, (36, 100, 3), dtype=np.uint8) for _ in range(3)]
        copies = [f.copy() for f in frames]
        scratch = None
        for frame, copy in zip(frames, copies):
            got, _ = pre(frame)
            np.testing.assert_array_equal(got, preprocess(copy, (64, 64), dict(PARAMS, color="rgb"))[0])
            np.testing.assert_array_equal(frame, copy)
            assert scratch is None or pre._resized is scratch  # one resize buffer for one frame size
            scratch = pre._resized

    def test_a_tensor_stays_valid_for_ring_minus_one_more_frames(self) -> None:
        pre = Preprocessor((32, 32), PARAMS, ring=3)
        first, _ = pre(_image(40, 20, 10))
        kept = first.copy()
        second, _ = pre(_image(40, 20, 20))
        third, _ = pre(_image(40, 20, 30))
        assert first is not second and second is not third
        np.testing.assert_array_equal(first, kept)  # untouched by the next ring - 1 frames
        fourth, _ = pre(_image(40, 20, 40))
        assert fourth is first  # the ring wrapped: the caller must be done with it by now
        np.testing.assert_allclose(fourth[:, 16, 16], 40 / 255, rtol=1e-6)
        np.testing.assert_allclose(fourth[:, 0, 0], 114 / 255, rtol=1e-6)

    def test_ring_must_be_positive(self) -> None:
        with pytest.raises(ParamsError, match="ring"):
            Preprocessor((8, 8), PARAMS, ring=0)
