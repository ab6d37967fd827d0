"""Reading calibration images robustly: header sizes, truncation checks, bounded decoding.

One reader for the selection step and the activation statistics, so both see the same
pixels. Images larger than :data:`HUGE_PIXELS` are decoded at 1/2, 1/4 or 1/8 size
(OpenCV's ``IMREAD_REDUCED_*``: JPEG scales in the DCT, other formats are resized after
decoding), which keeps memory bounded; the recipe's pre-processing shrinks them to the
network input anyway.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = [
    "HUGE_PIXELS",
    "IMAGE_SUFFIXES",
    "decode_image",
    "header_size",
    "is_truncated",
    "read_bytes",
    "reduction_for",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File suffixes (any case) considered images; other files are counted, never decoded."""

HUGE_PIXELS = 40_000_000
"""Images with more pixels than this are decoded reduced (see the module docstring)."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in _SOF and pos + 9 <= end:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats."""
    if data.startswith(_PNG_MAGIC) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def is_truncated(data: bytes) -> bool:
    """Whether a JPEG or PNG file is cut short (OpenCV decodes those with grey filler).

    JPEG: no end-of-image marker after the last start-of-scan marker (scan data cannot
    contain either: 0xFF is byte-stuffed). PNG: no ``IEND`` chunk. Other formats: False.
    """
    if data.startswith(b"\xff\xd8"):
        last_scan = data.rfind(b"\xff\xda")
        return last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0
    if data.startswith(_PNG_MAGIC):
        return data.rfind(b"IEND") < 0
    return False


def reduction_for(size: tuple[int, int] | None, max_pixels: int = HUGE_PIXELS) -> int:
    """The decode reduction (1, 2, 4 or 8) that brings ``size`` under ``max_pixels``."""
    if size is None:
        return 1
    pixels = size[0] * size[1]
    for factor in (1, 2, 4):
        if pixels <= max_pixels * factor * factor:
            return factor
    return 8


def decode_image(data: bytes, *, reduce: int = 1, grey: bool = False) -> np.ndarray | None:
    """Decode image bytes as OpenCV reads frames: (h, w, 3) uint8 BGR, or (h, w) for ``grey``.

    Grey, 16-bit and alpha images are converted (to 3-channel 8-bit BGR unless ``grey``).

    Args:
        data: the file's bytes.
        reduce: 1, 2, 4 or 8: decode at that fraction of the size.
        grey: decode one channel.

    Returns:
        The image, or None when OpenCV cannot decode it.
    """
    import cv2

    flags = {
        (1, False): cv2.IMREAD_COLOR,
        (2, False): cv2.IMREAD_REDUCED_COLOR_2,
        (4, False): cv2.IMREAD_REDUCED_COLOR_4,
        (8, False): cv2.IMREAD_REDUCED_COLOR_8,
        (1, True): cv2.IMREAD_GRAYSCALE,
        (2, True): cv2.IMREAD_REDUCED_GRAYSCALE_2,
        (4, True): cv2.IMREAD_REDUCED_GRAYSCALE_4,
        (8, True): cv2.IMREAD_REDUCED_GRAYSCALE_8,
    }[(reduce, grey)]
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:  # e.g. above OpenCV's pixel limit
        return None
    if image is None or image.size == 0:
        return None
    return image
