"""YuNet (libfacedetection.train): anchor-free, 4 outputs per stride, 5 landmarks.

Outputs ``cls_s [N_s, 1]``, ``obj_s [N_s, 1]`` (both sigmoided), ``bbox_s [N_s, 4]``,
``kps_s [N_s, 10]`` for each stride s in ``strides``, N_s = ceil(H/s)·ceil(W/s) cells row-major.
They are found by name (``cls_8`` …) when present, else by order: all cls, all obj, all bbox,
all kps, each stride-ordered (the order of the released ONNX files).

Decode (``tools/compare_inference.py``, class YUNET): anchor ``a = (x·s, y·s)`` (no +0.5);
centre ``= bbox[:2]·s + a``, size ``= exp(bbox[2:])·s``; landmark k ``= kps[2k:2k+2]·s + a``.
Score = cls·obj (``score: product``, the training repo) or sqrt(cls·obj) (``score: sqrt``,
OpenCV FaceDetectorYN).
"""

from __future__ import annotations

from typing import Any, List, Mapping, Tuple

import numpy as np

from ..errors import OutputsError, ParamsError
from ..types import Detections
from ._common import as_rows, conf_threshold, detections, int_list, param, strided_centres, xywh_to_xyxy
from .registry import register_decoder

NAME = "yunet"
_KINDS = (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))


def _gather(outputs: Mapping[str, np.ndarray], strides: List[int]) -> List[np.ndarray]:
    """[cls, obj, bbox, kps], each all strides concatenated as (N, width) rows."""
    names = [f"{kind}_{s}" for kind, _ in _KINDS for s in strides]
    if all(n in outputs for n in names):
        ordered = [outputs[n] for n in names]
    elif len(outputs) == len(names):
        ordered = list(outputs.values())
    else:
        raise OutputsError(
            f"decoder 'yunet' expects {len(names)} outputs ({', '.join(names)}) for strides {strides}, "
            f"got {len(outputs)}: {', '.join(outputs)}"
        )
    n = len(strides)
    return [
        np.concatenate(
            [
                as_rows(np.asarray(a, np.float32), width, names[k * n + i], NAME)
                for i, a in enumerate(ordered[k * n : (k + 1) * n])
            ]
        )
        for k, (_, width) in enumerate(_KINDS)
    ]


@register_decoder(NAME)
def decode_yunet(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode YuNet outputs (batch axis removed; see the module docstring).

    Args:
        outputs: cls/obj/bbox/kps per stride (named ``cls_8`` … or in the released order).
        input_hw: network input (H, W) in pixels.
        params: resolved ``postprocess``: ``conf_threshold``, ``strides``, ``score``.

    Returns:
        Faces with score >= ``conf_threshold``: boxes xyxy and landmarks (N, 5, 2) in input
        pixels, class_ids 0.
    """
    strides = int_list(params, "strides", NAME)
    cls, obj, bbox, kps = _gather(outputs, strides)
    anchors = strided_centres(input_hw, strides, 0.0)
    if anchors.shape[0] != cls.shape[0] or not cls.shape[0] == obj.shape[0] == bbox.shape[0] == kps.shape[0]:
        raise OutputsError(
            f"decoder 'yunet': outputs have {cls.shape[0]}/{obj.shape[0]}/{bbox.shape[0]}/{kps.shape[0]} "
            f"rows, strides {strides} at input {tuple(input_hw)} give {anchors.shape[0]} cells"
        )
    mode = param(params, "score", NAME)
    if mode not in ("product", "sqrt"):
        raise ParamsError(f"postprocess score for decoder 'yunet' must be 'product' or 'sqrt', got {mode!r}")
    scores = cls[:, 0] * obj[:, 0]
    if mode == "sqrt":
        scores = np.sqrt(np.clip(scores, 0.0, 1.0))
    keep = np.nonzero(scores >= conf_threshold(params, NAME))[0]
    stride = anchors[keep, 2:3]
    origin = anchors[keep, :2] * stride
    centre = bbox[keep, :2] * stride + origin
    size = np.exp(bbox[keep, 2:4]) * stride
    points = kps[keep].reshape(-1, 5, 2) * stride[:, :, None] + origin[:, None, :]
    boxes = xywh_to_xyxy(np.concatenate([centre, size], axis=1))
    return detections(boxes, scores[keep], np.zeros(keep.size, np.int64), points)
