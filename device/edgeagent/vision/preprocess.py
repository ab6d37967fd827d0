"""Camera frame (HWC uint8 BGR) -> network input tensor (CHW float32), and the way back.

Geometry: every resize mode is an axis-aligned affine map ``input = source * scale + pad``
(continuous pixel coordinates, the top-left corner of pixel (0, 0) at 0.0), recorded in a
:class:`Transform` so decoded boxes can be mapped back to the original frame.

Modes (``params["resize"]``):

- ``letterbox``: keep the aspect ratio, centre, pad. Rounding matches YOLOv5's
  ``letterbox(auto=False)``: ``r = min(H/h, W/w)``, resized size ``round(w·r) x round(h·r)``,
  left/top pad ``round(dw/2 - 0.1)``.
- ``stretch``: resize to the input size (aspect ratio not kept), no pad.
- ``top-left-pad`` (YOLOX, YuNet): ``r = min(H/h, W/w)``, resize to ``int(w·r) x int(h·r)``,
  paste at the top-left, pad right/bottom.

The transform records the *actual* scale of the resized content (``new_w / w``, ``new_h / h``)
and the integer pad, which is the exact inverse of what was drawn; reference code that divides
by ``r`` instead differs by less than one source pixel.
"""

from __future__ import annotations

from typing import Any, List, Mapping, NamedTuple, Sequence, Tuple

import numpy as np

from .errors import ParamsError

# cv2 is imported where it is used, so NMS/decoders (and host code importing them) do not load it.
_INTERPOLATION = {
    "linear": "INTER_LINEAR",
    "nearest": "INTER_NEAREST",
    "area": "INTER_AREA",
    "cubic": "INTER_CUBIC",
}
_PREPROCESS_KEYS = ("resize", "pad_value", "color", "scale", "mean", "std", "interpolation")


class Transform(NamedTuple):
    """Source image -> network input geometry: ``input = source * scale + pad`` per axis.

    Attributes:
        scale_x: input pixels per source pixel along x.
        scale_y: input pixels per source pixel along y.
        pad_x: input pixels left of the pasted image.
        pad_y: input pixels above the pasted image.
        src_w: source image width in pixels.
        src_h: source image height in pixels.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    src_w: int
    src_h: int

    def boxes_to_source(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map boxes from input pixels to source pixels, clipped to the source image.

        Args:
            boxes_xyxy: (N, 4) xyxy in input pixels.

        Returns:
            (N, 4) float32 xyxy in source pixels, within [0, src_w] x [0, src_h].
        """
        boxes = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        gain = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        out = (boxes - offset) / gain
        np.clip(out[:, 0::2], 0.0, float(self.src_w), out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, float(self.src_h), out=out[:, 1::2])
        return out

    def points_to_source(self, points: np.ndarray) -> np.ndarray:
        """Map points (e.g. face landmarks) from input pixels to source pixels.

        Points are not clipped: a landmark of a face cut by the frame edge may lie outside.

        Args:
            points: (..., 2) xy in input pixels.

        Returns:
            float32 array of the same shape, xy in source pixels.
        """
        pts = np.asarray(points, np.float32)
        offset = np.array([self.pad_x, self.pad_y], np.float32)
        gain = np.array([self.scale_x, self.scale_y], np.float32)
        return (pts - offset) / gain


def _check_image(image_bgr: np.ndarray) -> Tuple[int, int]:
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim not in (2, 3) or image_bgr.size == 0:
        raise ParamsError("image must be a non-empty HxW or HxWxC numpy array (OpenCV BGR uint8)")
    if image_bgr.dtype != np.uint8:
        raise ParamsError(f"image must be uint8 (0..255) as OpenCV reads it, got {image_bgr.dtype}")
    if image_bgr.ndim == 3 and image_bgr.shape[2] not in (1, 3):
        raise ParamsError(f"image has {image_bgr.shape[2]} channels; expected 3 (BGR) or 1 (grey)")
    return int(image_bgr.shape[0]), int(image_bgr.shape[1])


def _resize(image: np.ndarray, new_w: int, new_h: int, interpolation: str) -> np.ndarray:
    if image.shape[1] == new_w and image.shape[0] == new_h:
        return image
    import cv2

    return cv2.resize(image, (new_w, new_h), interpolation=getattr(cv2, _INTERPOLATION[interpolation]))


def resize_to_input(
    image_bgr: np.ndarray,
    input_hw: Tuple[int, int],
    mode: str,
    pad_value: float,
    interpolation: str = "linear",
) -> Tuple[np.ndarray, Transform]:
    """Resize a frame to the network input size.

    Args:
        image_bgr: (h, w, 3) uint8 BGR frame (or (h, w) grey).
        input_hw: network input (H, W) in pixels.
        mode: ``letterbox``, ``stretch`` or ``top-left-pad`` (see the module docstring).
        pad_value: fill value (0..255) for the padded area.
        interpolation: ``linear``, ``nearest``, ``area`` or ``cubic``.

    Returns:
        The (H, W, C) uint8 image (same channel order as the input) and its :class:`Transform`.

    Raises:
        ParamsError: unknown mode or interpolation, bad sizes.
    """
    h, w = _check_image(image_bgr)
    in_h, in_w = int(input_hw[0]), int(input_hw[1])
    if in_h <= 0 or in_w <= 0:
        raise ParamsError(f"input_hw must be two positive ints, got {tuple(input_hw)}")
    if interpolation not in _INTERPOLATION:
        raise ParamsError(f"unknown interpolation {interpolation!r}; use one of {', '.join(_INTERPOLATION)}")
    interp = interpolation
    if mode == "stretch":
        out = _resize(image_bgr, in_w, in_h, interp)
        return out, Transform(in_w / w, in_h / h, 0.0, 0.0, w, h)
    r = min(in_h / h, in_w / w)
    if mode == "letterbox":
        new_w, new_h = max(1, int(round(w * r))), max(1, int(round(h * r)))
        left = int(round((in_w - new_w) / 2 - 0.1))
        top = int(round((in_h - new_h) / 2 - 0.1))
    elif mode == "top-left-pad":
        new_w, new_h = max(1, int(w * r)), max(1, int(h * r))
        left = top = 0
    else:
        raise ParamsError(f"unknown resize mode {mode!r}; use letterbox, stretch or top-left-pad")
    resized = _resize(image_bgr, new_w, new_h, interp)
    fill = int(np.clip(round(pad_value), 0, 255))
    bottom, right = in_h - new_h - top, in_w - new_w - left
    if min(top, bottom, left, right) >= 0:
        import cv2

        # One C++ pass (copy + constant border) instead of fill-then-paste in numpy.
        canvas = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(fill,) * 4)
        if canvas.ndim < resized.ndim:  # OpenCV drops a trailing channel axis of 1
            canvas = canvas[:, :, None]
    else:
        canvas = np.full((in_h, in_w) + resized.shape[2:], fill, np.uint8)
        canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, Transform(new_w / w, new_h / h, float(left), float(top), w, h)


def _param(params: Mapping[str, Any], key: str) -> Any:
    if key not in params:
        raise ParamsError(
            f"preprocess params: missing key {key!r} (needs {', '.join(_PREPROCESS_KEYS)}); "
            "pass the recipe's resolved 'preprocess' mapping"
        )
    return params[key]


def _affine(params: Mapping[str, Any], channels: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel (a, b) with ``value = pixel * a - b`` == ``(pixel * scale - mean) / std``."""
    scale = float(_param(params, "scale"))
    mean = np.asarray(_param(params, "mean"), np.float64).reshape(-1)
    std = np.asarray(_param(params, "std"), np.float64).reshape(-1)
    if mean.size != 3 or std.size != 3 or np.any(std == 0):
        raise ParamsError("preprocess mean and std must have 3 values each and std must not contain 0")
    a, b = scale / std, mean / std
    if channels == 1:
        a, b = a[:1], b[:1]
    return a.astype(np.float32).reshape(-1, 1, 1), b.astype(np.float32).reshape(-1, 1, 1)


def preprocess(
    image_bgr: np.ndarray, input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Tuple[np.ndarray, Transform]:
    """Turn one frame into a network input tensor.

    ``value = (pixel * scale - mean) / std`` per channel, channels in ``params["color"]`` order.

    Args:
        image_bgr: (h, w, 3) uint8 BGR frame as OpenCV reads it ((h, w) grey gives 1 channel).
        input_hw: network input (H, W) in pixels.
        params: the recipe's resolved ``preprocess`` mapping: ``resize``, ``pad_value``,
            ``color`` (``rgb``/``bgr``), ``scale``, ``mean``, ``std``, ``interpolation``.

    Returns:
        (C, H, W) float32 C-contiguous tensor, and the :class:`Transform` source -> input.

    Raises:
        ParamsError: a missing key or a bad value.
    """
    image, transform = resize_to_input(
        image_bgr,
        input_hw,
        _param(params, "resize"),
        float(_param(params, "pad_value")),
        _param(params, "interpolation"),
    )
    color = _param(params, "color")
    if color not in ("rgb", "bgr"):
        raise ParamsError(f"preprocess color must be 'rgb' or 'bgr', got {color!r}")
    if image.ndim == 2:
        image = image[:, :, None]
    a, b = _affine(params, image.shape[2])
    out = np.empty((image.shape[2],) + image.shape[:2], np.float32)
    # Per channel on contiguous planes (a strided HWC->CHW view is ~2x slower in numpy),
    # written straight into the float32 output.
    import cv2

    planes = cv2.split(image) if image.shape[2] > 1 else [image[:, :, 0]]
    if color == "rgb" and len(planes) == 3:
        planes = planes[::-1]
    for c, plane in enumerate(planes):
        gain, offset = a[c, 0, 0], b[c, 0, 0]
        if offset == 0:
            np.multiply(plane, gain, out=out[c])
        else:  # pixel * a - b == (pixel - b / a) * a: one pass when a == 1 (mean-only models)
            np.subtract(plane, offset / gain, out=out[c])
            if gain != 1:
                out[c] *= gain
    return out, transform


def preprocess_batch(
    images: Sequence[np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Tuple[np.ndarray, List[Transform]]:
    """:func:`preprocess` for several frames.

    Args:
        images: frames, each (h_i, w_i, 3) uint8 BGR (sizes may differ).
        input_hw: network input (H, W) in pixels.
        params: the recipe's resolved ``preprocess`` mapping.

    Returns:
        (N, C, H, W) float32 batch and one :class:`Transform` per frame.

    Raises:
        ParamsError: empty ``images``, or see :func:`preprocess`.
    """
    if len(images) == 0:
        raise ParamsError("preprocess_batch needs at least one image")
    tensors, transforms = [], []
    for image in images:
        tensor, transform = preprocess(image, input_hw, params)
        tensors.append(tensor)
        transforms.append(transform)
    return np.stack(tensors), transforms
