"""How much a pruning trial changed the model's outputs (for :mod:`edgesdk.slim.sensitivity`).

* Tensor damage: per graph output and attribute (the last axis of ``[N, boxes, attrs]``
  outputs, the channel axis of NCHW heads), the mean squared error over how much that attribute
  varies with the image content, rows where the original detects something weighted higher.
* Detection damage (when the recipe is known): the original's and the trial's decoded
  detections compared, per reference detection ``1 - IoU x score ratio`` of its best same-class
  match, plus one per new confident detection; the measure closest to what mAP sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _attribute_axis(value: np.ndarray) -> int | None:
    if value.ndim == 4:
        return 1
    if value.ndim >= 2 and value.shape[-1] <= 256:
        return value.ndim - 1
    return None


def scales(references: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per output and attribute, how much the values vary with the IMAGE content: the variance
    across the damage images of each element, averaged over the attribute's elements (floored).

    Not the variance across anchors, which a YOLO output's grid offsets dominate (a box centre
    varies by hundreds of pixels over the grid, by a few with the content)."""
    scales = {}
    for name in references[0]:
        values = np.stack([r[name] for r in references]).astype(np.float64)
        spread = values.var(axis=0) if len(values) > 1 else np.square(values[0])
        axis = _attribute_axis(values[0])
        if axis is None:
            scales[name] = np.array(float(spread.mean()) + 1e-12)
            continue
        per = np.moveaxis(spread, axis, -1).reshape(-1, spread.shape[axis]).mean(axis=0)
        scales[name] = np.maximum(per, 1e-3 * float(per.max()) + 1e-12)
    return scales


def _is_box_major(value: np.ndarray) -> bool:
    return value.ndim == 3 and value.shape[-1] <= 256


def anchor_weights(
    reference: dict[str, np.ndarray], all_refs: list[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per box-major output (``[B, N, attrs]``), a weight per row: ``max(0.1, s / mean(s))``, where
    ``s`` is the row's highest probability-like value (an attribute within [0, 1] whose mean over
    the damage images is below 0.5, i.e. not a background class) over the outputs with N rows.
    Errors where the reference detects something then count far more than on empty background."""
    salient: dict[int, np.ndarray] = {}
    for name, value in reference.items():
        if not _is_box_major(value):
            continue
        stacked = np.stack([r[name] for r in all_refs])
        probability = (stacked.min(axis=(0, 1, 2)) >= 0) & (stacked.max(axis=(0, 1, 2)) <= 1)
        probability &= stacked.mean(axis=(0, 1, 2)) < 0.5
        if probability.any():
            rows = value[..., probability].max(axis=-1).reshape(-1).astype(np.float64)
            n = value.shape[1]
            salient[n] = rows if n not in salient else np.maximum(salient[n], rows)
    weights = {}
    for name, value in reference.items():
        rows = salient.get(value.shape[1]) if _is_box_major(value) else None
        if rows is not None and rows.mean() > 0:
            weights[name] = np.maximum(0.1, rows / rows.mean())
    return weights


def tensor_error(
    value: np.ndarray, reference: np.ndarray, scale: np.ndarray, weights: np.ndarray | None
) -> float:
    diff = value.astype(np.float64) - reference
    axis = _attribute_axis(reference)
    if axis is None:
        return float(np.mean(diff**2) / scale)
    per = np.moveaxis(diff, axis, -1).reshape(-1, diff.shape[axis]) ** 2
    if weights is not None and len(weights) == len(per):
        return float(np.mean(weights @ per / weights.sum() / scale))
    return float(np.mean(np.mean(per, axis=0) / scale))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def disagreement(ref: Any, got: Any, threshold: float) -> float:
    """How much ``got``'s detections differ from ``ref``'s (both decoded at half the threshold):
    per reference detection above the threshold, 1 - IoU x score ratio of its best same-class
    match; plus one per new detection above the threshold that overlaps none; per reference."""
    r = ref.scores >= threshold
    g = got.scores >= 0.0
    boxes_r, scores_r, classes_r = ref.boxes[r], ref.scores[r], ref.class_ids[r]
    boxes_g, scores_g, classes_g = got.boxes[g], got.scores[g], got.class_ids[g]
    if len(boxes_r) == 0:
        return float((scores_g >= threshold).sum())
    if len(boxes_g) == 0:
        return float(len(boxes_r)) / len(boxes_r)
    same = classes_r[:, None] == classes_g[None, :]
    iou = _iou(boxes_r, boxes_g) * same
    ratio = np.minimum(1.0, scores_g[None, :] / scores_r[:, None])
    miss = 1.0 - (iou * ratio).max(axis=1)
    strong = scores_g >= threshold
    new = strong & (iou.max(axis=0) < 0.5)
    return float(miss.sum() + new.sum()) / len(boxes_r)


class Detector:
    """Decodes outputs with the recipe's decoder at half its confidence threshold."""

    def __init__(self, recipe: Any) -> None:
        self.post = recipe.resolved()["postprocess"]
        self.hw = recipe.input.hw
        self.threshold = float(self.post.get("conf_threshold") or 0.25)

    def __call__(self, outputs: dict[str, np.ndarray]) -> list[Any]:
        """Detections (input pixels) per image of the batch."""
        from edgeagent.vision.postprocess import postprocess, split_batch

        return [
            postprocess(o, self.hw, self.post, conf_threshold=0.5 * self.threshold, max_detections=300)
            for o in split_batch(outputs)
        ]
