"""YOLOv8 (anchor-free, no objectness), two output forms.

- ``dfl: false`` (ultralytics ONNX export): one decoded output ``[4 + C, N]``: rows
  ``cx, cy, w, h`` in input pixels, then C class scores (sigmoided); one column per anchor point.
- ``dfl: true``: one raw head per stride (``params["strides"]``, same order), each
  ``[4·reg_max + C, H, W]``: 4 sides (left, top, right, bottom) x ``reg_max`` bins, then C class
  logits. Distance per side = softmax over its bins · (0 .. reg_max-1) (the DFL expectation),
  in stride units from the anchor centre ``(x + 0.5, y + 0.5)``:
  ``x1 = (ax - l)·s, y1 = (ay - t)·s, x2 = (ax + r)·s, y2 = (ay + b)·s``; score = σ(logit).

One class per candidate (the best one).
"""

from __future__ import annotations

from typing import Any, List, Mapping, Tuple

import numpy as np

from ..errors import OutputsError, ParamsError
from ..types import Detections
from ._common import (
    arrays,
    best_class,
    conf_threshold,
    detections,
    expect_count,
    grid_size,
    int_list,
    param,
    sigmoid,
    softmax,
    xywh_to_xyxy,
)
from .registry import register_decoder

NAME = "yolov8"


def _decode_export(out: np.ndarray, conf: float) -> Detections:
    if out.ndim != 2 or out.shape[0] < 5:
        raise OutputsError(
            f"decoder 'yolov8' (dfl: false) expects one [4 + C, N] output, got shape {out.shape}"
        )
    rows = out.T
    scores, ids = best_class(rows[:, 4:])
    keep = scores >= conf
    return detections(xywh_to_xyxy(rows[keep, :4]), scores[keep], ids[keep])


def _dfl_distances(box_logits: np.ndarray, reg_max: int) -> np.ndarray:
    """(K, 4·reg_max) logits -> (K, 4) expected distances (left, top, right, bottom) in cells."""
    probs = softmax(box_logits.reshape(-1, 4, reg_max), axis=2)
    return probs @ np.arange(reg_max, dtype=np.float32)


def _decode_head(head: np.ndarray, stride: int, reg_max: int, conf: float) -> Detections:
    channels, gh, gw = head.shape
    flat = head.reshape(channels, gh * gw)
    scores, ids = best_class(sigmoid(flat[4 * reg_max :].T))
    cells = np.nonzero(scores >= conf)[0]
    ax = (cells % gw).astype(np.float32) + 0.5
    ay = (cells // gw).astype(np.float32) + 0.5
    dist = _dfl_distances(flat[: 4 * reg_max, cells].T, reg_max)
    boxes = np.stack([ax - dist[:, 0], ay - dist[:, 1], ax + dist[:, 2], ay + dist[:, 3]], axis=1) * stride
    return detections(boxes, scores[cells], ids[cells])


def _decode_dfl(outs: List[np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]) -> Detections:
    strides = int_list(params, "strides", NAME)
    reg_max = int(param(params, "reg_max", NAME))
    if reg_max < 1:
        raise ParamsError(f"postprocess reg_max must be >= 1, got {reg_max}")
    expect_count(outs, (len(strides),), NAME)
    conf = conf_threshold(params, NAME)
    parts = []
    for head, stride in zip(outs, strides):
        if head.ndim != 3 or head.shape[0] <= 4 * reg_max:
            raise OutputsError(
                f"decoder 'yolov8' (dfl: true) expects heads [4*reg_max + C, H, W] with reg_max {reg_max}, "
                f"got shape {head.shape}"
            )
        if head.shape[1:] != grid_size(input_hw, stride):
            raise OutputsError(
                f"decoder 'yolov8': head {head.shape} does not match stride {stride} at input "
                f"{tuple(input_hw)}; list postprocess.strides in model output order"
            )
        parts.append(_decode_head(head, stride, reg_max, conf))
    return detections(
        np.concatenate([p.boxes for p in parts]),
        np.concatenate([p.scores for p in parts]),
        np.concatenate([p.class_ids for p in parts]),
    )


@register_decoder(NAME)
def decode_yolov8(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode YOLOv8 outputs (batch axis removed), either form (see the module docstring).

    Args:
        outputs: ``dfl: false``: one (4 + C, N) array; ``dfl: true``: one
            (4·reg_max + C, H_s, W_s) array per stride, in ``strides`` order.
        input_hw: network input (H, W) in pixels.
        params: resolved ``postprocess``: ``conf_threshold``, ``dfl``, ``reg_max``, ``strides``.

    Returns:
        Candidates with best class score >= ``conf_threshold``; boxes xyxy input pixels.
    """
    outs = arrays(outputs)
    if bool(param(params, "dfl", NAME)):
        return _decode_dfl(outs, input_hw, params)
    expect_count(outs, (1,), NAME)
    out = outs[0]
    return _decode_export(out.reshape(out.shape[-2:]) if out.ndim == 3 else out, conf_threshold(params, NAME))
