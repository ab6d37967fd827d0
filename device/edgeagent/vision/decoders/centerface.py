"""CenterFace (Star-Clouds/CenterFace): a face is a heatmap peak at stride 4.

Outputs in this order (batch axis removed; names vary between exports, so order is used):
``heatmap [1, h, w]`` (sigmoided), ``scale [2, h, w]`` (log(height / s), log(width / s)),
``offset [2, h, w]`` (y, x in cells), ``landmarks [10, h, w]`` (per point y, x relative to the box).

Decode (the public CenterFace demo, ``prj-python/centerface.py`` ``decode``), for a cell
(row y, column x) with score >= threshold, s = ``stride``:

- ``bh = exp(scale[0])·s``, ``bw = exp(scale[1])·s``;
- ``x1 = max(0, (x + offset[1] + 0.5)·s - bw/2)``, ``y1 = max(0, (y + offset[0] + 0.5)·s - bh/2)``,
  then ``x1 <= W``, ``y1 <= H``; ``x2 = min(x1 + bw, W)``, ``y2 = min(y1 + bh, H)`` (clipped to the input);
- landmark k: ``(x1 + landmarks[2k + 1]·bw, y1 + landmarks[2k]·bh)`` (relative to the clipped corner,
  as the demo does).

The demo keeps ``heatmap > threshold``; here ``>=`` like every other decoder. It does no peak
(max-pool) extraction either: neighbouring cells are left to NMS.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

import numpy as np

from ..errors import OutputsError, ParamsError
from ..types import Detections
from ._common import arrays, conf_threshold, detections, expect_count, param
from .registry import register_decoder

NAME = "centerface"
_CHANNELS = (1, 2, 2, 10)


def _maps(outputs: Mapping[str, np.ndarray]) -> Tuple[np.ndarray, ...]:
    outs = arrays(outputs)
    expect_count(outs, (4,), NAME)
    maps = [o.reshape(o.shape[-3:]) if o.ndim >= 3 else o for o in outs]
    shapes = [m.shape for m in maps]
    if (
        any(m.ndim != 3 for m in maps)
        or tuple(m.shape[0] for m in maps) != _CHANNELS
        or len({m.shape[1:] for m in maps}) != 1
    ):
        raise OutputsError(
            "decoder 'centerface' expects heatmap [1,h,w], scale [2,h,w], offset [2,h,w], landmarks "
            f"[10,h,w] in this order, got {shapes}"
        )
    return tuple(maps)


@register_decoder(NAME)
def decode_centerface(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode CenterFace outputs (batch axis removed; see the module docstring).

    Args:
        outputs: heatmap, scale, offset, landmarks maps, in this order.
        input_hw: network input (H, W) in pixels (boxes are clipped to it).
        params: resolved ``postprocess``: ``conf_threshold``, ``stride``.

    Returns:
        Faces with heatmap score >= ``conf_threshold``: boxes xyxy and landmarks (N, 5, 2)
        in input pixels, class_ids 0.
    """
    heat, scale, offset, lms = _maps(outputs)
    stride = float(param(params, "stride", NAME))
    if stride <= 0:
        raise ParamsError(f"postprocess stride must be positive, got {stride}")
    in_h, in_w = float(input_hw[0]), float(input_hw[1])
    ys, xs = np.nonzero(heat[0] >= conf_threshold(params, NAME))
    bh = np.exp(scale[0, ys, xs]) * stride
    bw = np.exp(scale[1, ys, xs]) * stride
    x1 = np.minimum(np.maximum((xs + offset[1, ys, xs] + 0.5) * stride - bw / 2.0, 0.0), in_w)
    y1 = np.minimum(np.maximum((ys + offset[0, ys, xs] + 0.5) * stride - bh / 2.0, 0.0), in_h)
    boxes = np.stack([x1, y1, np.minimum(x1 + bw, in_w), np.minimum(y1 + bh, in_h)], axis=1)
    rel = lms[:, ys, xs].T.reshape(-1, 5, 2)  # per point (y, x)
    points = np.stack(
        [x1[:, None] + rel[:, :, 1] * bw[:, None], y1[:, None] + rel[:, :, 0] * bh[:, None]], axis=2
    )
    return detections(boxes, heat[0, ys, xs], np.zeros(ys.size, np.int64), points)
