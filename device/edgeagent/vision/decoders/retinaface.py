"""RetinaFace (biubug6/Pytorch_Retinaface layout): priors per stride, variances, 5 landmarks.

Outputs (batch axis removed), either

- one concatenated ``[N, 16]`` = ``loc (4) | conf (2: background, face) | landmarks (10)``, or
- three outputs in this order: ``loc [N, 4]``, ``conf [N, 2]``, ``landmarks [N, 10]``.

Priors: for each step s (``steps``), each cell (i, j) row-major, each size m of
``min_sizes[s]``: ``((j + 0.5)·s / W, (i + 0.5)·s / H, m / W, m / H)``. Decode with
``variances`` (v0, v1): ``cxy = p_xy + loc_xy·v0·p_wh``, ``wh = p_wh·exp(loc_wh·v1)``,
landmark k ``= p_xy + lm_k·v0·p_wh``; then scaled by the input size to pixels.
Score = softmax(conf)[face] when ``conf_softmax`` (logits), else conf[:, 1] as given.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Tuple

import numpy as np

from ..errors import OutputsError
from ..types import Detections
from ._common import (
    arrays,
    as_rows,
    conf_threshold,
    decode_ssd_boxes,
    detections,
    expect_count,
    int_list,
    param,
    size_groups,
    softmax_column,
    ssd_priors,
    variances,
    xywh_to_xyxy,
)
from .registry import register_decoder

NAME = "retinaface"


def _split(outs: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    expect_count(outs, (1, 3), NAME)
    if len(outs) == 1:
        rows = as_rows(outs[0], 16, "the concatenated output (loc|conf|landmarks)", NAME)
        return rows[:, 0:4], rows[:, 4:6], rows[:, 6:16]
    loc = as_rows(outs[0], 4, "output 1 (loc)", NAME)
    conf = as_rows(outs[1], 2, "output 2 (conf)", NAME)
    lms = as_rows(outs[2], 10, "output 3 (landmarks)", NAME)
    if not loc.shape[0] == conf.shape[0] == lms.shape[0]:
        raise OutputsError(
            f"decoder 'retinaface': loc/conf/landmarks row counts differ: "
            f"{loc.shape}, {conf.shape}, {lms.shape}"
        )
    return loc, conf, lms


@register_decoder(NAME)
def decode_retinaface(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode RetinaFace outputs (batch axis removed).

    Args:
        outputs: ``[N, 16]`` concat, or ``loc [N, 4]``, ``conf [N, 2]``, ``landmarks [N, 10]``.
        input_hw: network input (H, W) in pixels.
        params: resolved ``postprocess``: ``conf_threshold``, ``steps``, ``min_sizes``,
            ``variances``, ``conf_softmax``.

    Returns:
        Faces with score >= ``conf_threshold``: boxes xyxy and landmarks (N, 5, 2) in input
        pixels, class_ids 0.

    Raises:
        OutputsError: N does not match the priors of ``steps``/``min_sizes`` at ``input_hw``.
    """
    loc, conf, lms = _split(arrays(outputs))
    steps = int_list(params, "steps", NAME)
    priors = ssd_priors(input_hw, steps, size_groups(params, "min_sizes", steps, NAME))
    if priors.shape[0] != loc.shape[0]:
        raise OutputsError(
            f"decoder 'retinaface': {loc.shape[0]} output rows but steps/min_sizes at input "
            f"{tuple(input_hw)} give {priors.shape[0]} priors; "
            "check postprocess.steps, min_sizes and input.shape"
        )
    scores = softmax_column(conf, 1) if bool(param(params, "conf_softmax", NAME)) else conf[:, 1]
    keep = np.nonzero(scores >= conf_threshold(params, NAME))[0]
    priors = priors[keep]
    var = variances(params, NAME)
    size = np.array([input_hw[1], input_hw[0]], np.float32)
    boxes = decode_ssd_boxes(loc[keep], priors, var)
    boxes = xywh_to_xyxy(boxes * np.tile(size, 2))
    points = priors[:, None, :2] + lms[keep].reshape(-1, 5, 2) * var[0] * priors[:, None, 2:]
    return detections(boxes, scores[keep], np.zeros(keep.size, np.int64), points * size)
