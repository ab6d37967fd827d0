"""Model outputs -> final detections: decode, NMS, top-k, map back to the source frame."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .decoders import decode
from .errors import OutputsError, ParamsError
from .nms import batched_nms
from .preprocess import Transform
from .types import Detections


def _required(params: Mapping[str, Any], key: str) -> Any:
    if key not in params:
        raise ParamsError(
            f"postprocess params: missing key {key!r}; pass the recipe's resolved 'postprocess' mapping"
        )
    return params[key]


def postprocess(
    outputs: Mapping[str, np.ndarray],
    input_hw: Tuple[int, int],
    params: Mapping[str, Any],
    transform: Optional[Transform] = None,
    *,
    conf_threshold: Optional[float] = None,
    max_detections: Optional[int] = None,
) -> Detections:
    """Decode ONE image's outputs into final detections.

    Steps: decode (candidates >= conf threshold) -> per-class NMS (``iou_threshold``;
    one NMS over all classes when ``class_agnostic``) -> the ``max_detections`` best by score
    -> boxes/landmarks mapped to source pixels when ``transform`` is given.

    Args:
        outputs: output name -> array with the batch axis removed, in model output order
            (see :func:`split_batch`).
        input_hw: network input (H, W) in pixels.
        params: the recipe's resolved ``postprocess`` mapping.
        transform: the :class:`Transform` from pre-processing; None keeps input pixels.
        conf_threshold: override of ``params["conf_threshold"]`` (evaluation uses 0.001).
        max_detections: override of ``params["max_detections"]`` (evaluation uses 300).

    Returns:
        Detections by descending score; boxes xyxy float32 in source pixels (clipped to the
        frame) when ``transform`` is given, else in input pixels.

    Raises:
        ParamsError: a missing or bad parameter.
        OutputsError: outputs that do not fit the decoder.
    """
    if conf_threshold is not None:
        params = dict(params, conf_threshold=float(conf_threshold))
    limit = int(_required(params, "max_detections") if max_detections is None else max_detections)
    if limit < 1:
        raise ParamsError(f"max_detections must be >= 1, got {limit}")
    candidates = decode(outputs, input_hw, params)
    keep = batched_nms(
        candidates.boxes,
        candidates.scores,
        candidates.class_ids,
        float(_required(params, "iou_threshold")),
        class_agnostic=bool(_required(params, "class_agnostic")),
        max_output=limit,
    )
    dets = candidates.take(keep)
    if transform is None:
        return dets
    landmarks = None if dets.landmarks is None else transform.points_to_source(dets.landmarks)
    return Detections(transform.boxes_to_source(dets.boxes), dets.scores, dets.class_ids, landmarks)


def split_batch(outputs: Mapping[str, np.ndarray]) -> List[Dict[str, np.ndarray]]:
    """Split batched outputs (leading batch axis N) into N per-image dicts (same key order).

    Args:
        outputs: output name -> (N, ...) array.

    Returns:
        ``[{name: array[i]} for i in range(N)]``.

    Raises:
        OutputsError: no outputs, a 0-d output, or outputs with different batch sizes.
    """
    if not outputs:
        raise OutputsError("split_batch: the model returned no outputs")
    sizes = {}
    for name, value in outputs.items():
        if np.ndim(value) == 0:
            raise OutputsError(f"split_batch: output {name!r} is a scalar; expected a leading batch axis")
        sizes[name] = int(np.shape(value)[0])
    if len(set(sizes.values())) != 1:
        raise OutputsError(f"split_batch: outputs disagree on the batch size: {sizes}")
    batch = next(iter(sizes.values()))
    return [{name: np.asarray(value)[i] for name, value in outputs.items()} for i in range(batch)]
