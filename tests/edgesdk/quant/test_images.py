"""Robust image reading: header sizes, truncation, reduced decoding of huge images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgesdk.quant.images import HUGE_PIXELS, decode_image, header_size, is_truncated, reduction_for


def _encoded(ext: str, shape: tuple[int, int] = (48, 64)) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def test_header_size_png_and_jpeg_without_decoding(sample_images: dict[str, Path]) -> None:
    assert header_size(_encoded(".png")) == (64, 48)
    assert header_size(_encoded(".jpg")) == (64, 48)
    bus = sample_images["bus"].read_bytes()  # a real camera JPEG with EXIF segments
    assert header_size(bus) == (810, 1080)
    assert header_size(_encoded(".bmp")) is None
    assert header_size(b"not an image") is None


def test_truncation(sample_images: dict[str, Path]) -> None:
    bus = sample_images["bus"].read_bytes()
    assert not is_truncated(bus)
    assert is_truncated(bus[: len(bus) // 2])
    png = _encoded(".png")
    assert not is_truncated(png) and is_truncated(png[:-20])
    assert not is_truncated(_encoded(".bmp"))
    baseline = _encoded(".jpg", (256, 256))
    assert not is_truncated(baseline) and is_truncated(baseline[:-2]) and is_truncated(baseline[:600])


def test_reduction_for_huge_images() -> None:
    assert reduction_for(None) == 1
    assert reduction_for((4000, 3000)) == 1
    assert reduction_for((8000, 6000)) == 2  # 48 MP
    assert reduction_for((20000, 10000)) == 4
    assert reduction_for((100000, 100000)) == 8
    assert HUGE_PIXELS == 40_000_000


def test_decode_converts_grey_and_reduces() -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    ok, buf = cv2.imencode(".png", grey)
    image = decode_image(buf.tobytes())
    assert image is not None and image.shape == (32, 64, 3) and (image[..., 0] == image[..., 2]).all()
    one = decode_image(buf.tobytes(), grey=True)
    assert one is not None and one.shape == (32, 64)
    half = decode_image(_encoded(".jpg", (64, 96)), reduce=2)
    assert half is not None and half.shape == (32, 48, 3)
    assert decode_image(b"\xff\xd8 garbage") is None
