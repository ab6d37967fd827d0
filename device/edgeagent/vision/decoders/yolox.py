"""YOLOX: one output ``[N, 5 + C]`` over strided grids, boxes still raw.

Rows are ordered stride by stride (``params["strides"]``, e.g. 8, 16, 32), each grid row-major.
Each row is ``(tx, ty, tw, th, obj, cls...)`` with obj/cls already sigmoided. Decode (Megvii
YOLOX ``decode_outputs``): ``xy = (t_xy + cell_xy) · stride`` (no +0.5),
``wh = exp(t_wh) · stride``, centre format in input pixels; score = obj · max(cls).
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

import numpy as np

from ..errors import OutputsError
from ..types import Detections
from ._common import arrays, conf_threshold, expect_count, int_list, strided_centres
from .registry import register_decoder
from .yolov5 import decode_objectness_rows

NAME = "yolox"


@register_decoder(NAME)
def decode_yolox(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode a YOLOX ``[N, 5 + C]`` output (batch axis removed).

    Args:
        outputs: one output, (N, 5 + C) float32 with N = sum over strides of
            ceil(H/s) · ceil(W/s).
        input_hw: network input (H, W) in pixels.
        params: resolved ``postprocess``: ``conf_threshold``, ``strides``.

    Returns:
        Candidates with obj · best class score >= ``conf_threshold``; boxes xyxy input pixels.

    Raises:
        OutputsError: N does not match the grids of ``strides`` at ``input_hw``.
    """
    outs = arrays(outputs)
    expect_count(outs, (1,), NAME)
    rows = outs[0].reshape(-1, outs[0].shape[-1])
    cells = strided_centres(input_hw, int_list(params, "strides", NAME), 0.0)
    if rows.shape[0] != cells.shape[0]:
        raise OutputsError(
            f"decoder 'yolox': output has {rows.shape[0]} rows but strides {list(params['strides'])} at "
            f"input {tuple(input_hw)} give {cells.shape[0]} grid cells; "
            "check postprocess.strides and input.shape"
        )
    conf = conf_threshold(params, NAME)
    keep = rows[:, 4] >= conf  # decode only the rows that can pass
    rows, cells = rows[keep].copy(), cells[keep]
    stride = cells[:, 2:3]
    rows[:, 0:2] = (rows[:, 0:2] + cells[:, 0:2]) * stride
    rows[:, 2:4] = np.exp(rows[:, 2:4]) * stride
    return decode_objectness_rows(rows, conf, NAME)
