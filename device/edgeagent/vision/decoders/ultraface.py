"""Ultra-Light-Fast-Generic-Face-Detector-1MB: ``scores [N, 2]`` and ``boxes [N, 4]``.

``scores`` are softmaxed (background, face). ``boxes`` are either decoded in the graph
(``boxes_decoded: true``: x1, y1, x2, y2 normalised to 0..1), or raw SSD regressions against
priors (``boxes_decoded: false``): for each stride s (``strides``), feature map
gh x gw = ceil(H/s) x ceil(W/s), each cell (i, j) row-major, each size m of ``min_boxes[s]``:
``((j + 0.5) / gw, (i + 0.5) / gh, m / W, m / H)`` clipped to [0, 1] (the repo's ``fd_config``
uses shrinkage = input / feature map, and ``generate_priors(clamp=True)``; checked against the
in-graph decode of version-RFB-320, where 240/32 and 240/64 do not divide), decoded with
``variances`` like SSD.
The two outputs are told apart by their last dimension (2 vs 4), not by order.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

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
    ssd_priors,
    variances,
    xywh_to_xyxy,
)
from .registry import register_decoder

NAME = "ultraface"


def _scores_boxes(outputs: Mapping[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    outs = arrays(outputs)
    expect_count(outs, (2,), NAME)
    by_width = {o.shape[-1]: o for o in outs}
    if set(by_width) != {2, 4}:
        raise OutputsError(
            f"decoder 'ultraface' expects scores [N, 2] and boxes [N, 4], "
            f"got shapes {[o.shape for o in outs]}"
        )
    scores = as_rows(by_width[2], 2, "scores", NAME)
    boxes = as_rows(by_width[4], 4, "boxes", NAME)
    if scores.shape[0] != boxes.shape[0]:
        raise OutputsError(f"decoder 'ultraface': scores {scores.shape} and boxes {boxes.shape} differ in N")
    return scores, boxes


@register_decoder(NAME)
def decode_ultraface(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode Ultra-Light face outputs (batch axis removed).

    Args:
        outputs: ``scores`` (N, 2) and ``boxes`` (N, 4), any order.
        input_hw: network input (H, W) in pixels.
        params: resolved ``postprocess``: ``conf_threshold``, ``boxes_decoded``, and for raw
            boxes ``strides``, ``min_boxes``, ``variances``.

    Returns:
        Faces with score >= ``conf_threshold``: boxes xyxy input pixels, class_ids 0, no landmarks.
    """
    scores, boxes = _scores_boxes(outputs)
    keep = np.nonzero(scores[:, 1] >= conf_threshold(params, NAME))[0]
    scale = np.array([input_hw[1], input_hw[0]] * 2, np.float32)
    if bool(param(params, "boxes_decoded", NAME)):
        xyxy = boxes[keep] * scale
    else:
        strides = int_list(params, "strides", NAME)
        priors = np.clip(
            ssd_priors(input_hw, strides, size_groups(params, "min_boxes", strides, NAME), True), 0.0, 1.0
        )
        if priors.shape[0] != boxes.shape[0]:
            raise OutputsError(
                f"decoder 'ultraface': {boxes.shape[0]} boxes but strides/min_boxes at input "
                f"{tuple(input_hw)} give {priors.shape[0]} priors; "
                "check postprocess.strides, min_boxes and input.shape"
            )
        xyxy = xywh_to_xyxy(decode_ssd_boxes(boxes[keep], priors[keep], variances(params, NAME)) * scale)
    return detections(xyxy, scores[keep, 1], np.zeros(keep.size, np.int64))
