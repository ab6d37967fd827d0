"""Helpers shared by the decoder families (parameter access, activations, grids)."""

from __future__ import annotations

import functools
from typing import Any, List, Mapping, Sequence, Tuple

import numpy as np

from ..errors import OutputsError, ParamsError
from ..types import Detections

NUM_FACE_LANDMARKS = 5


def param(params: Mapping[str, Any], key: str, decoder: str) -> Any:
    """``params[key]``, or a ParamsError naming the key (the device never invents defaults)."""
    if key not in params:
        raise ParamsError(
            f"postprocess params for decoder {decoder!r}: missing key {key!r}; pass the recipe's "
            "resolved 'postprocess' mapping (Recipe.resolved() / manifest.json), which fills every key"
        )
    return params[key]


def conf_threshold(params: Mapping[str, Any], decoder: str) -> float:
    """The candidate score threshold (0..1)."""
    value = float(param(params, "conf_threshold", decoder))
    if not 0.0 <= value <= 1.0:
        raise ParamsError(f"postprocess conf_threshold must be within [0, 1], got {value}")
    return value


def int_list(params: Mapping[str, Any], key: str, decoder: str) -> List[int]:
    """A non-empty list of positive ints (strides, steps)."""
    values = [int(v) for v in param(params, key, decoder)]
    if not values or any(v <= 0 for v in values):
        raise ParamsError(f"postprocess {key} for decoder {decoder!r} must be positive ints, got {values}")
    return values


def arrays(outputs: Mapping[str, np.ndarray]) -> List[np.ndarray]:
    """The outputs as float32 arrays in model output order."""
    return [np.asarray(v, np.float32) for v in outputs.values()]


def expect_count(items: Sequence[Any], counts: Sequence[int], decoder: str) -> None:
    """Raise OutputsError unless ``len(items)`` is one of ``counts``."""
    if len(items) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise OutputsError(f"decoder {decoder!r} expects {want} model outputs, got {len(items)}")


def as_rows(array: np.ndarray, width: int, what: str, decoder: str) -> np.ndarray:
    """View ``array`` as (N, width) rows (accepts (N, width) or (1, N, width) leftovers)."""
    if array.size % width != 0 or array.shape[-1] != width:
        raise OutputsError(
            f"decoder {decoder!r}: {what} must have last dimension {width}, got shape {array.shape}"
        )
    return array.reshape(-1, width)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float32, without overflow warnings for large |x|."""
    x = np.asarray(x, np.float32)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_column(x: np.ndarray, column: int) -> np.ndarray:
    """Softmax probability of one ``column`` of (N, C) logits, without the full (N, C) softmax.

    ``p = 1 / sum_k exp(x_k - x_column)``: one pass per class column (C is small: 2 for
    face/background) instead of row-wise max/sum reductions, which numpy does slowly over a
    short last axis. Overflow goes to inf and gives p = 0, which is the right limit.
    """
    x = np.asarray(x, np.float32)
    ref = x[:, column]
    total = np.ones(x.shape[0], np.float32)
    with np.errstate(over="ignore"):
        for k in range(x.shape[1]):
            if k != column:
                total += np.exp(x[:, k] - ref)
    return np.reciprocal(total)


def grid_cells(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Row-major cell indices (x, y) of an H x W grid, each (H*W,) float32."""
    ys, xs = np.divmod(np.arange(height * width, dtype=np.int64), width)
    return xs.astype(np.float32), ys.astype(np.float32)


def grid_size(input_hw: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """Feature-map (H, W) for a stride: ``ceil(input / stride)`` (stride-2 convs with padding)."""
    return -(-int(input_hw[0]) // stride), -(-int(input_hw[1]) // stride)


def strided_centres(input_hw: Tuple[int, int], strides: Sequence[int], offset: float) -> np.ndarray:
    """Grid-cell anchors over all strides, stride-major then row-major.

    Returns:
        (N, 3) float32 rows ``(x + offset, y + offset, stride)`` in cell units.
    """
    parts = []
    for stride in strides:
        gh, gw = grid_size(input_hw, stride)
        xs, ys = grid_cells(gh, gw)
        parts.append(np.stack([xs + offset, ys + offset, np.full_like(xs, stride)], axis=1))
    return np.concatenate(parts, axis=0)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) float32 x1, y1, x2, y2."""
    xy, half = xywh[:, :2], xywh[:, 2:4] / 2.0
    return np.concatenate([xy - half, xy + half], axis=1).astype(np.float32)


def detections(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, landmarks: Any = None
) -> Detections:
    """Build a Detections with the documented dtypes."""
    lm = None if landmarks is None else np.asarray(landmarks, np.float32).reshape(-1, NUM_FACE_LANDMARKS, 2)
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32).reshape(-1),
        np.asarray(class_ids, np.int64).reshape(-1),
        lm,
    )


def best_class(class_scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per row: (best score, its class id) over (N, C) scores."""
    ids = np.argmax(class_scores, axis=1)
    return class_scores[np.arange(class_scores.shape[0]), ids], ids


def ssd_priors(
    input_hw: Tuple[int, int],
    strides: Sequence[int],
    sizes: Sequence[Sequence[float]],
    centre_by_grid: bool = False,
) -> np.ndarray:
    """Cached :func:`_ssd_priors` (the same few thousand rows every frame); read-only array."""
    key = (
        (int(input_hw[0]), int(input_hw[1])),
        tuple(int(s) for s in strides),
        tuple(tuple(float(m) for m in group) for group in sizes),
        bool(centre_by_grid),
    )
    return _cached_priors(*key)


@functools.lru_cache(maxsize=16)
def _cached_priors(
    input_hw: Tuple[int, int],
    strides: Tuple[int, ...],
    sizes: Tuple[Tuple[float, ...], ...],
    centre_by_grid: bool,
) -> np.ndarray:
    priors = _ssd_priors(input_hw, strides, sizes, centre_by_grid)
    priors.setflags(write=False)
    return priors


def _ssd_priors(
    input_hw: Tuple[int, int],
    strides: Sequence[int],
    sizes: Sequence[Sequence[float]],
    centre_by_grid: bool = False,
) -> np.ndarray:
    """SSD-style square priors (RetinaFace, Ultra-Light face), normalised to the input size.

    For each stride s (grid gh x gw = ceil(H/s) x ceil(W/s)), each cell (i, j) row-major, each
    size m of that stride: ``(cx, cy, w, h) = ((j + 0.5)·s / W, (i + 0.5)·s / H, m / W, m / H)``,
    or with ``centre_by_grid`` ``cx = (j + 0.5) / gw, cy = (i + 0.5) / gh`` (the two differ only
    when s does not divide the input size).

    Returns:
        (N, 4) float32 priors, centre form, normalised to 0..1 of the input.
    """
    in_h, in_w = float(input_hw[0]), float(input_hw[1])
    parts = []
    for stride, group in zip(strides, sizes):
        gh, gw = grid_size(input_hw, stride)
        xs, ys = grid_cells(gh, gw)
        m = np.asarray(group, np.float32)
        step_x, step_y = (1.0 / gw, 1.0 / gh) if centre_by_grid else (stride / in_w, stride / in_h)
        cx = np.repeat((xs + 0.5) * step_x, m.size)
        cy = np.repeat((ys + 0.5) * step_y, m.size)
        w = np.tile(m / in_w, gh * gw)
        h = np.tile(m / in_h, gh * gw)
        parts.append(np.stack([cx, cy, w, h], axis=1))
    return np.concatenate(parts, axis=0).astype(np.float32)


def decode_ssd_boxes(loc: np.ndarray, priors: np.ndarray, variances: Tuple[float, float]) -> np.ndarray:
    """SSD box regression -> normalised centre form.

    ``cxy = p_xy + loc_xy · v0 · p_wh``, ``wh = p_wh · exp(loc_wh · v1)``.

    Args:
        loc: (N, 4) raw regressions.
        priors: (N, 4) priors, centre form, normalised.
        variances: (center variance, size variance).

    Returns:
        (N, 4) float32 (cx, cy, w, h) normalised.
    """
    cxy = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(loc[:, 2:] * variances[1])
    return np.concatenate([cxy, wh], axis=1).astype(np.float32)


def variances(params: Mapping[str, Any], decoder: str) -> Tuple[float, float]:
    """The (center, size) variances."""
    values = [float(v) for v in param(params, "variances", decoder)]
    if len(values) != 2:
        raise ParamsError(f"postprocess variances for decoder {decoder!r} must be two numbers, got {values}")
    return values[0], values[1]


def size_groups(
    params: Mapping[str, Any], key: str, strides: Sequence[int], decoder: str
) -> List[List[float]]:
    """Per-stride lists of prior sizes in input pixels, one list per stride."""
    groups = [[float(m) for m in g] for g in param(params, key, decoder)]
    if len(groups) != len(strides) or any(not g for g in groups):
        raise ParamsError(
            f"postprocess {key} for decoder {decoder!r} must give a non-empty size list per stride "
            f"({len(strides)} strides), got {groups}"
        )
    return groups
