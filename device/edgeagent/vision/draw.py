"""Annotate frames: detection boxes with labels, face landmarks, and a stats panel.

Everything draws on HWC uint8 BGR images with OpenCV. Box coordinates, colours and landmark dots
are computed with numpy for all detections at once; only the per-box ``cv2.rectangle`` and
``cv2.putText`` calls (and the label strings) loop in Python, once per box.
"""

from __future__ import annotations

import functools
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from .errors import ParamsError
from .types import Detections

FONT = cv2.FONT_HERSHEY_SIMPLEX

#: Landmark colours (BGR) by landmark index: left eye, right eye, nose, left/right mouth corner.
LANDMARK_COLOURS = np.array(
    [[255, 255, 0], [0, 255, 255], [255, 0, 255], [0, 255, 0], [0, 128, 255]], np.uint8
)


@functools.lru_cache(maxsize=8)
def palette(num_classes: int) -> np.ndarray:
    """Distinct, stable BGR colours: hues spaced by the golden ratio, bright and saturated.

    Args:
        num_classes: how many colours.

    Returns:
        (num_classes, 3) uint8 BGR; class ``i`` always gets row ``i`` (read-only).
    """
    n = max(1, int(num_classes))
    hue = (np.arange(n) * 0.618033988749895 + 0.05) % 1.0
    hsv = np.stack([hue * 180.0, np.full(n, 220.0), np.full(n, 255.0)], axis=1).astype(np.uint8)
    bgr = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0]
    bgr.setflags(write=False)
    return bgr


def _check(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ParamsError("drawing needs an (H, W, 3) uint8 BGR image as OpenCV reads it")


def _scale(image: np.ndarray, thickness: Optional[int]) -> int:
    """Line thickness in pixels: about 1 px per 360 px of the shorter side (at least 1)."""
    return int(thickness) if thickness else max(1, int(round(min(image.shape[:2]) / 360.0)))


def _dots(image: np.ndarray, points: np.ndarray, radius: int) -> None:
    """Filled discs at (N, K, 2) points, coloured by landmark index k, in one fancy-index write."""
    h, w = image.shape[:2]
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    disc = dx * dx + dy * dy <= radius * radius
    offsets = np.stack([dx[disc], dy[disc]], axis=1)  # (M, 2) xy
    pts = np.rint(points).astype(np.int64)[:, :, None, :] + offsets  # (N, K, M, 2)
    k = points.shape[1]
    colours = LANDMARK_COLOURS[np.arange(k) % len(LANDMARK_COLOURS)]
    colour = np.broadcast_to(colours[None, :, None, :], pts.shape[:3] + (3,))
    inside = (pts[..., 0] >= 0) & (pts[..., 0] < w) & (pts[..., 1] >= 0) & (pts[..., 1] < h)
    image[pts[..., 1][inside], pts[..., 0][inside]] = colour[inside]


def draw_detections(
    image_bgr: np.ndarray,
    detections: Detections,
    class_names: Sequence[str],
    *,
    landmarks: bool = True,
    inplace: bool = False,
    thickness: Optional[int] = None,
) -> np.ndarray:
    """Draw boxes (one colour per class), ``name score`` labels and landmark dots.

    Args:
        image_bgr: (H, W, 3) uint8 BGR frame; boxes are in its pixels (``source`` space).
        detections: boxes xyxy px, scores, class ids, optional (N, K, 2) landmarks.
        class_names: names indexed by class id (an id past the end is labelled by its number).
        landmarks: draw landmark dots when the detections have them.
        inplace: draw on ``image_bgr`` itself instead of a copy (the pipeline does; saves a copy).
        thickness: box line width in px (default: scales with the image, 1 px per 360 px).

    Returns:
        The annotated image (``image_bgr`` itself when ``inplace``).

    Raises:
        ParamsError: the image is not (H, W, 3) uint8.
    """
    _check(image_bgr)
    out = image_bgr if inplace else image_bgr.copy()
    n = len(detections)
    if n == 0:
        return out
    t = _scale(out, thickness)
    font_scale = 0.4 * t
    ids = np.asarray(detections.class_ids, np.int64).reshape(-1)
    colours = palette(max(len(class_names), int(ids.max()) + 1))[np.clip(ids, 0, None)].tolist()
    boxes = np.rint(np.asarray(detections.boxes, np.float64)).astype(np.int64).tolist()
    names = [class_names[i] if 0 <= i < len(class_names) else str(i) for i in ids.tolist()]
    for (x1, y1, x2, y2), colour, name, score in zip(boxes, colours, names, detections.scores.tolist()):
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, t)  # no anti-aliasing: exact class colour
        label = f"{name} {score:.2f}"
        (tw, th), base = cv2.getTextSize(label, FONT, font_scale, max(1, t // 2))
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1  # inside the box at the top edge
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(
            out, label, (x1 + 1, top + th + 1), FONT, font_scale, (0, 0, 0), max(1, t // 2), cv2.LINE_AA
        )
    if landmarks and detections.landmarks is not None and detections.landmarks.size:
        _dots(out, np.asarray(detections.landmarks, np.float64).reshape(n, -1, 2), t + 1)
    return out


def draw_stats(
    image_bgr: np.ndarray, fps: Optional[float], stage_ms: Mapping[str, float], *, inplace: bool = True
) -> np.ndarray:
    """Draw a darkened top-left panel: ``12.3 FPS`` then one ``stage  ms`` line per stage.

    Args:
        image_bgr: (H, W, 3) uint8 BGR frame.
        fps: frames per second to show (None: ``-``).
        stage_ms: stage name -> milliseconds, shown in the given order.
        inplace: draw on ``image_bgr`` (default) or on a copy.

    Returns:
        The annotated image.
    """
    _check(image_bgr)
    out = image_bgr if inplace else image_bgr.copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(h, w) / 900.0)
    line = int(round(24 * scale / 0.6))
    lines = [("-" if fps is None else f"{fps:.1f}") + " FPS"]
    lines += [f"{name:<11} {ms:7.1f} ms" for name, ms in stage_ms.items()]
    width = max(cv2.getTextSize(text, FONT, scale, 1)[0][0] for text in lines) + 12
    bottom = min(h, line * len(lines) + 8)
    right = min(w, width)
    np.right_shift(out[:bottom, :right], 1, out=out[:bottom, :right])  # darken by half: no float copy
    for i, text in enumerate(lines):
        y = line * (i + 1)
        colour = (80, 255, 80) if i == 0 else (255, 255, 255)
        cv2.putText(out, text, (6, y), FONT, scale, colour, 1, cv2.LINE_AA)
    return out
