"""darknet ``[yolo]`` heads (YOLOv3, YOLOv4, Yolo-Fastest): raw conv outputs, one per head.

Each head is ``[A·(5 + C), H, W]``: per anchor a block ``(tx, ty, tw, th, obj, cls...)`` of raw
logits. Decode (darknet ``get_yolo_box`` with ``scale_x_y`` = s):

- ``x = (σ(tx)·s - (s - 1)/2 + col) / W · input_w`` (y likewise with row, H, input_h);
- ``w = exp(tw) · anchor_w``, ``h = exp(th) · anchor_h`` (anchors in input pixels);
- score = σ(obj) · σ(cls), one class per candidate (the best one).

``params["anchors"]`` lists, per head in model output order, that head's (w, h) anchors.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Tuple

import numpy as np

from ..errors import OutputsError, ParamsError
from ..types import Detections
from ._common import arrays, best_class, conf_threshold, detections, param, sigmoid, xywh_to_xyxy
from .registry import register_decoder

NAME = "yolov3"


def _anchors(params: Mapping[str, Any]) -> List[np.ndarray]:
    heads = param(params, "anchors", NAME)
    try:
        out = [np.asarray(h, np.float32).reshape(-1, 2) for h in heads]
    except (TypeError, ValueError):
        raise ParamsError(
            "postprocess anchors must be, per head, a list of (w, h) pairs in input px"
        ) from None
    if not out or any(a.shape[0] == 0 for a in out):
        raise ParamsError("postprocess anchors must list at least one (w, h) pair per [yolo] head")
    return out


def _decode_head(
    head: np.ndarray, anchors: np.ndarray, input_hw: Tuple[int, int], scale_xy: float, conf: float
) -> Detections:
    num_anchors = anchors.shape[0]
    if head.ndim != 3 or head.shape[0] % num_anchors or head.shape[0] // num_anchors < 6:
        raise OutputsError(
            f"decoder 'yolov3': head of shape {head.shape} does not split into {num_anchors} anchors x "
            "(5 + classes) channels; check postprocess.anchors (per head, in model output order)"
        )
    gh, gw = head.shape[1:]
    t = head.reshape(num_anchors, -1, gh, gw)
    obj = sigmoid(t[:, 4])
    a, gy, gx = np.nonzero(obj >= conf)  # (anchor, row, col) of cells that can pass
    sel = t[a, :, gy, gx]  # (K, 5 + C)
    scores, ids = best_class(sigmoid(sel[:, 5:]) * obj[a, gy, gx][:, None])
    xy = sigmoid(sel[:, 0:2]) * scale_xy - (scale_xy - 1.0) / 2.0 + np.stack([gx, gy], axis=1)
    xy = xy / np.array([gw, gh], np.float32) * np.array([input_hw[1], input_hw[0]], np.float32)
    wh = np.exp(sel[:, 2:4]) * anchors[a]
    keep = scores >= conf
    return detections(xywh_to_xyxy(np.concatenate([xy, wh], axis=1)[keep]), scores[keep], ids[keep])


@register_decoder(NAME)
def decode_yolov3(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode darknet ``[yolo]`` head outputs (batch axis removed).

    Args:
        outputs: one (A·(5 + C), H, W) raw array per [yolo] head, in model output order.
        input_hw: network input (H, W) in pixels.
        params: resolved ``postprocess``: ``conf_threshold``, ``anchors``, ``scale_x_y``.

    Returns:
        Candidates with σ(obj)·σ(best cls) >= ``conf_threshold``; boxes xyxy input pixels.

    Raises:
        OutputsError: head count or channel count does not match ``anchors``.
    """
    outs = arrays(outputs)
    anchors = _anchors(params)
    if len(outs) != len(anchors):
        raise OutputsError(
            f"decoder 'yolov3': the model has {len(outs)} outputs but postprocess.anchors lists "
            f"{len(anchors)} heads; give one anchor list per [yolo] output, in output order"
        )
    scale_xy = float(param(params, "scale_x_y", NAME))
    conf = conf_threshold(params, NAME)
    parts = [_decode_head(h, a, input_hw, scale_xy, conf) for h, a in zip(outs, anchors)]
    return detections(
        np.concatenate([p.boxes for p in parts]),
        np.concatenate([p.scores for p in parts]),
        np.concatenate([p.class_ids for p in parts]),
    )
