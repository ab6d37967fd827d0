"""YOLOv5 export: one decoded output ``[N, 5 + C]``.

Each row is ``(cx, cy, w, h, obj, cls_0 .. cls_{C-1})``: centre and size in input pixels,
objectness and class scores already sigmoided (the export's Detect head decodes
``xy = (2·σ - 0.5 + grid)·stride``, ``wh = (2·σ)²·anchor``). Score = obj · max(cls), one class per
row (the best one), as YOLOv5's NMS does with ``multi_label=False``.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

import numpy as np

from ..errors import OutputsError
from ..types import Detections
from ._common import arrays, best_class, conf_threshold, detections, expect_count, xywh_to_xyxy
from .registry import register_decoder

NAME = "yolov5"


def decode_objectness_rows(rows: np.ndarray, conf: float, decoder: str) -> Detections:
    """Rows ``(cx, cy, w, h, obj, cls...)`` (all decoded) -> candidates with obj·cls >= conf.

    Args:
        rows: (N, 5 + C) float32; boxes in input pixels, scores in 0..1.
        conf: score threshold.
        decoder: name for error messages.

    Returns:
        Candidates in row order, boxes xyxy in input pixels.
    """
    if rows.ndim != 2 or rows.shape[1] < 6:
        raise OutputsError(f"decoder {decoder!r} expects rows (N, 5 + classes), got shape {rows.shape}")
    # obj >= conf is implied by obj * cls >= conf (cls <= 1): a cheap first filter on one column.
    rows = rows[rows[:, 4] >= conf]
    scores, ids = best_class(rows[:, 5:] * rows[:, 4:5])
    keep = scores >= conf
    return detections(xywh_to_xyxy(rows[keep, :4]), scores[keep], ids[keep])


@register_decoder(NAME)
def decode_yolov5(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode a YOLOv5 ``[N, 5 + C]`` output (batch axis removed).

    Args:
        outputs: one output, (N, 5 + C) float32, boxes cx, cy, w, h in input pixels.
        input_hw: network input (H, W) (unused: the boxes are already in input pixels).
        params: resolved ``postprocess``: ``conf_threshold``.

    Returns:
        Candidates with obj · best class score >= ``conf_threshold``; boxes xyxy input pixels.
    """
    outs = arrays(outputs)
    expect_count(outs, (1,), NAME)
    rows = outs[0].reshape(-1, outs[0].shape[-1])
    return decode_objectness_rows(rows, conf_threshold(params, NAME), NAME)
