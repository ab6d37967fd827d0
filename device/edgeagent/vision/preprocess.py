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

from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple

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


def _resize(
    image: np.ndarray, new_w: int, new_h: int, interpolation: str, dst: Optional[np.ndarray] = None
) -> np.ndarray:
    """Resize ``image`` to (new_h, new_w) (into ``dst`` when given and of that shape and dtype)."""
    if image.shape[1] == new_w and image.shape[0] == new_h:
        return image
    import cv2

    flag = getattr(cv2, _INTERPOLATION[interpolation])
    if dst is not None and dst.shape == (new_h, new_w) + image.shape[2:] and dst.dtype == image.dtype:
        return cv2.resize(image, (new_w, new_h), dst=dst, interpolation=flag)
    return cv2.resize(image, (new_w, new_h), interpolation=flag)


class _Layout(NamedTuple):
    """Where the resized frame sits in the input: size, offset, and the transform."""

    new_w: int
    new_h: int
    left: int
    top: int
    transform: Transform


def _layout(image_bgr: np.ndarray, input_hw: Tuple[int, int], mode: str, interpolation: str) -> _Layout:
    h, w = _check_image(image_bgr)
    in_h, in_w = int(input_hw[0]), int(input_hw[1])
    if in_h <= 0 or in_w <= 0:
        raise ParamsError(f"input_hw must be two positive ints, got {tuple(input_hw)}")
    if interpolation not in _INTERPOLATION:
        raise ParamsError(f"unknown interpolation {interpolation!r}; use one of {', '.join(_INTERPOLATION)}")
    if mode == "stretch":
        return _Layout(in_w, in_h, 0, 0, Transform(in_w / w, in_h / h, 0.0, 0.0, w, h))
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
    return _Layout(new_w, new_h, left, top, Transform(new_w / w, new_h / h, float(left), float(top), w, h))


def _fits(lay: _Layout, input_hw: Tuple[int, int]) -> bool:
    return 0 <= lay.top <= input_hw[0] - lay.new_h and 0 <= lay.left <= input_hw[1] - lay.new_w


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
    lay = _layout(image_bgr, input_hw, mode, interpolation)
    resized = _resize(image_bgr, lay.new_w, lay.new_h, interpolation)
    in_h, in_w = int(input_hw[0]), int(input_hw[1])
    if (lay.new_h, lay.new_w) == (in_h, in_w):
        return resized, lay.transform
    fill = int(np.clip(round(pad_value), 0, 255))
    bottom, right = in_h - lay.new_h - lay.top, in_w - lay.new_w - lay.left
    if _fits(lay, (in_h, in_w)):
        import cv2

        # One C++ pass (copy + constant border) instead of fill-then-paste in numpy.
        canvas = cv2.copyMakeBorder(
            resized, lay.top, bottom, lay.left, right, cv2.BORDER_CONSTANT, value=(fill,) * 4
        )
        if canvas.ndim < resized.ndim:  # OpenCV drops a trailing channel axis of 1
            canvas = canvas[:, :, None]
    else:
        canvas = np.full((in_h, in_w) + resized.shape[2:], fill, np.uint8)
        canvas[lay.top : lay.top + lay.new_h, lay.left : lay.left + lay.new_w] = resized
    return canvas, lay.transform


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
        (C, H, W) float32 C-contiguous tensor (a new array), and the :class:`Transform` source -> input.

    Raises:
        ParamsError: a missing key or a bad value.
    """
    return Preprocessor(input_hw, params, ring=1)(image_bgr)


class Preprocessor:
    """:func:`preprocess` into a ring of reused input tensors whose padding is written once.

    A letterboxed frame fills only part of the input (a 16:9 frame: 56 % of a square one), and
    the border is the same for every frame of one size, so each buffer gets its border once and a
    frame converts only its own pixels — about half the pre-processing time of a 768x432 frame
    into 640x640, and no per-frame 5 MB allocation.

    A returned tensor is overwritten by the ``ring``-th call after the one that returned it: the
    caller must be done with it by then (the pipeline sizes the ring from its queue bounds). The
    resized frame and its colour planes also go into buffers kept from call to call: fresh arrays
    of that size cost page faults on every frame (``cv2.split`` of a 640x360 frame into new arrays:
    0.6-1.0 ms of CPU, into kept ones: 0.02 ms). Calls must therefore come from one thread at a time.

    Args:
        input_hw: network input (H, W) in pixels.
        params: the recipe's resolved ``preprocess`` mapping (see :func:`preprocess`).
        ring: number of buffers (>= 1).

    Raises:
        ParamsError: a missing key or a bad value in ``params``, or ``ring`` < 1.
    """

    def __init__(self, input_hw: Tuple[int, int], params: Mapping[str, Any], ring: int) -> None:
        if ring < 1:
            raise ParamsError(f"Preprocessor ring must be >= 1, got {ring}")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self._mode = _param(params, "resize")
        self._pad = int(np.clip(round(float(_param(params, "pad_value"))), 0, 255))
        self._interp = _param(params, "interpolation")
        color = _param(params, "color")
        if color not in ("rgb", "bgr"):
            raise ParamsError(f"preprocess color must be 'rgb' or 'bgr', got {color!r}")
        self._rgb = color == "rgb"
        self._affine3 = _affine(params, 3)
        self._affine1 = (self._affine3[0][:1], self._affine3[1][:1])
        self._buffers: List[Optional[np.ndarray]] = [None] * ring
        self._borders: List[Optional[Tuple[int, ...]]] = [None] * ring
        self._next = 0
        self._resized: Optional[np.ndarray] = None  # scratch: the last resized frame
        self._planes: List[np.ndarray] = []  # scratch: its colour planes

    def __call__(self, image_bgr: np.ndarray) -> Tuple[np.ndarray, Transform]:
        """Pre-process one frame; returns ((C, H, W) float32 tensor, :class:`Transform`)."""
        lay = _layout(image_bgr, self.input_hw, self._mode, self._interp)
        if not _fits(lay, self.input_hw):  # not reachable with the modes above; kept exact anyway
            image, transform = resize_to_input(image_bgr, self.input_hw, self._mode, self._pad, self._interp)
            lay = _Layout(self.input_hw[1], self.input_hw[0], 0, 0, transform)
        else:
            image = _resize(image_bgr, lay.new_w, lay.new_h, self._interp, self._resized)
            if image is not image_bgr:
                self._resized = image
        if image.ndim == 2:
            image = image[:, :, None]
        channels = image.shape[2]
        a, b = self._affine3 if channels == 3 else self._affine1
        slot = self._next
        self._next = (slot + 1) % len(self._buffers)
        out = self._buffers[slot]
        border = (channels, lay.top, lay.left, lay.new_h, lay.new_w)
        if out is None or out.shape[0] != channels:
            out = self._buffers[slot] = np.empty((channels,) + self.input_hw, np.float32)
            self._borders[slot] = None
        if self._borders[slot] != border:
            if (lay.new_h, lay.new_w) != self.input_hw:
                pad = np.full((channels, 1, 1), self._pad, np.uint8)
                out[:] = _convert(pad, a, b, self._rgb)
            self._borders[slot] = border
        roi = out[:, lay.top : lay.top + lay.new_h, lay.left : lay.left + lay.new_w]
        _convert_planes(image, a, b, self._rgb, roi, self._planes)
        return out, lay.transform


def _convert(planes_chw: np.ndarray, a: np.ndarray, b: np.ndarray, rgb: bool) -> np.ndarray:
    """(C, h, w) uint8 -> float32 with the per-channel affine (used for the 1-pixel border value)."""
    out = np.empty(planes_chw.shape, np.float32)
    _convert_planes(planes_chw.transpose(1, 2, 0), a, b, rgb, out)
    return out


def _convert_planes(
    image: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rgb: bool,
    out: np.ndarray,
    scratch: Optional[List[np.ndarray]] = None,
) -> None:
    """Write ``pixel * a - b`` per channel of (h, w, C) uint8 ``image`` into (C, h, w) float32 ``out``.

    ``scratch``: a list the planes are split into and kept in (resized in place when their shape
    differs), or None for new arrays.
    """
    # Per channel on contiguous planes (a strided HWC->CHW view is ~2x slower in numpy),
    # written straight into the float32 output.
    import cv2

    channels = image.shape[2]
    if channels > 1 and image.flags.c_contiguous:
        if scratch is None:
            planes = list(cv2.split(image))
        else:
            if (
                len(scratch) != channels
                or scratch[0].shape != image.shape[:2]
                or scratch[0].dtype != image.dtype
            ):
                scratch[:] = [np.empty(image.shape[:2], image.dtype) for _ in range(channels)]
            planes = list(cv2.split(image, scratch))  # written in place; kept as returned either way
            scratch[:] = planes
    else:
        planes = [image[:, :, c] for c in range(channels)]
    if rgb and len(planes) == 3:
        planes = planes[::-1]
    for c, plane in enumerate(planes):
        gain, offset = a[c, 0, 0], b[c, 0, 0]
        if offset == 0:
            np.multiply(plane, gain, out=out[c])
        else:  # pixel * a - b == (pixel - b / a) * a: one pass when a == 1 (mean-only models)
            np.subtract(plane, offset / gain, out=out[c])
            if gain != 1:
                out[c] *= gain


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
