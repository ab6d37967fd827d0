"""Activation-aware least squares: fit what the next activation lets through.

The plain refit (:mod:`edgesdk.slim.reconstruct`) fits a layer's pre-activation output
uniformly. When the layer's output is read by a Relu, LeakyRelu, PRelu or Clip alone, errors
where the original and the fitted value both lie in the activation's flat region are squashed
by it; a few iteratively reweighted passes (IRLS, damped) fit the post-activation values
instead (docs/slim.md, ``reconstructor(activation_aware=True)``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, is_empty_input

log = logging.getLogger(__name__)

AWARE_ITERATIONS = 3
"""Reweighted least-squares passes after the plain fit (``refit(activation_aware=True)``)."""
AWARE_DAMPING = 0.5
"""Weight of the previous solution in each pass (undamped passes oscillate, e.g. for Clip)."""
AWARE_FLOOR = 1e-3
"""Weight of a row where target and prediction are both in the activation's flat region."""
AWARE_MAX_FLOPS = 4e10
"""A layer whose weighted normal equations (``S x U^2 x O`` per pass) cost more is fitted plainly."""
AWARE_CHUNK_BYTES = 256 * 2**20
"""Memory of one batch of weighted rows (output channels are processed in chunks of this size)."""


@dataclass(frozen=True)
class Activation:
    """The activation applied to a layer's output: where it is flat, and its slope there.

    ``kind``: ``relu`` (slope 0 below ``low`` = 0), ``leaky`` / ``prelu`` (``slope`` below 0: a
    float or one per output channel), ``clip`` (flat below ``low`` and above ``high``).
    """

    kind: Literal["relu", "leaky", "prelu", "clip"]
    slope: float | np.ndarray = 0.0
    low: float = 0.0
    high: float = float("inf")


def _scalar(tensor: gs.Tensor | None, default: float) -> float:
    value = constant_value(tensor) if tensor is not None and not is_empty_input(tensor) else None
    return default if value is None or np.size(value) != 1 else float(np.asarray(value).reshape(()))


def activation_after(node: gs.Node, graph_output: bool = False) -> Activation | None:
    """The activation that alone reads ``node``'s output (None: anything else, or also a graph output).

    Recognised: Relu, LeakyRelu, PRelu (per-channel slope ``[C]`` / ``[C, 1, 1]`` or scalar) and
    Clip (constant bounds; Relu6). SiLU (``Mul(x, Sigmoid(x))``) is left to the plain fit: neither
    a ``silu'(target)^2`` weighting nor a flat region below -4 helped (docs/benchmarks.md).
    """
    readers = list(node.outputs[0].outputs)
    if len(readers) == 1 and not graph_output:
        return activation_of(readers[0])
    return None


def activation_of(act: gs.Node) -> Activation | None:
    """``act`` as an :class:`Activation` when it is a Relu, LeakyRelu, PRelu or Clip with constant
    parameters (None otherwise)."""
    if act.op == "Relu":
        return Activation("relu")
    if act.op == "LeakyRelu":
        return Activation("leaky", float(act.attrs.get("alpha", 0.01)))
    if act.op == "PRelu" and len(act.inputs) > 1:
        slope = constant_value(act.inputs[1])
        if slope is None or slope.size == 0 or slope.ndim > 1 and slope.size != slope.shape[0]:
            return None
        flat = np.asarray(slope, np.float64).reshape(-1)
        return Activation("prelu", float(flat[0]) if flat.size == 1 else flat)
    if act.op == "Clip":
        bounds = [*act.inputs[1:3], None, None]  # opset >= 11: inputs; before: attributes
        low = float(act.attrs.get("min", _scalar(bounds[0], -np.inf)))
        high = float(act.attrs.get("max", _scalar(bounds[1], np.inf)))
        return Activation("clip", 0.0, low, high)
    return None


def activation_weights(
    act: Activation, target: np.ndarray, pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Targets and row weights ``[S, O]`` of one reweighted pass (pre-activation values in).

    Where the prediction is in the activation's identity region, the row is fitted to the
    target clipped into that region (weight 1: the post-activation error exactly). Where
    target and prediction are both in a flat (or slope ``s``) region, the row weighs
    :data:`AWARE_FLOOR` (``s^2``, ReLU: 0 -> floor): errors there are squashed. Where only the
    target is in the identity region, the row keeps its target and weight 1 (pulls the
    prediction back).
    """
    low, high = act.low, act.high
    if act.kind == "clip":
        flat = (np.maximum(target, pred) < low) | (np.minimum(target, pred) > high)
        weight = np.where(flat, AWARE_FLOOR, 1.0)
    else:
        slope = np.broadcast_to(np.asarray(act.slope, np.float64), target.shape[1:])
        weight = np.where(np.maximum(target, pred) < low, np.maximum(slope**2, AWARE_FLOOR), 1.0)
    inside = (pred >= low) & (pred <= high)
    if act.kind == "clip":
        clipped = np.clip(target, low, high)
    else:  # the post-activation value of the target, as reached from the identity region
        clipped = np.where(target < low, low + slope * (target - low), target)
    return np.where(inside, clipped, target), weight


def activate(act: Activation, x: np.ndarray) -> np.ndarray:
    """The activation applied to pre-activation values ``x`` ``[S, O]``."""
    if act.kind == "clip":
        return np.clip(x, act.low, act.high)
    slope = np.broadcast_to(np.asarray(act.slope, np.float64), x.shape[1:])
    return np.where(x < 0, slope * x, x)


def weighted_solve(rows: np.ndarray, y: np.ndarray, weights: np.ndarray, ridge: float = 1e-4) -> np.ndarray:
    """Per output channel ridge least squares ``min sum_s w_so (rows_s . t_o - y_so)^2``.

    Args:
        rows: ``[S, U]`` inputs (bias column included); y / weights: ``[S, O]``.
        ridge: strength relative to the mean diagonal of each channel's weighted ``X^T X``.

    Returns:
        ``[U, O]`` (as the plain fit's solution): batched solves over chunks of output channels
        (at most :data:`AWARE_CHUNK_BYTES` of weighted rows at a time).
    """
    count, width = rows.shape
    solution = np.empty((width, y.shape[1]))
    for start in range(0, y.shape[1], chunk_size(count, width)):
        w = weights[:, start : start + chunk_size(count, width)].T  # [c, S]
        gram = np.matmul(rows.T[None] * w[:, None, :], rows)  # [c, U, U]
        rhs = (w * y[:, start : start + len(w)].T) @ rows  # [c, U]
        diag = np.einsum("cuu->cu", gram)  # a view: the ridge is added in place
        diag += (ridge * diag.mean(axis=1) + 1e-12)[:, None]
        solution[:, start : start + len(w)] = np.linalg.solve(gram, rhs[..., None])[..., 0].T
    return solution


def chunk_size(count: int, width: int) -> int:
    """Output channels per batch of :func:`weighted_solve` for ``count`` rows of ``width`` unknowns."""
    return max(1, int(AWARE_CHUNK_BYTES // (8 * count * width)))


def aware_solution(
    name: str, rows: np.ndarray, y: np.ndarray, act: Activation, solution: np.ndarray, ridge: float = 1e-4
) -> np.ndarray:
    """A few reweighted passes from the plain ``solution`` ``[U, O]`` (see :func:`activation_weights`).

    Per output channel, the iterate with the least post-activation error on these rows is kept,
    so on them the result is never worse than the plain fit."""
    started = time.perf_counter()
    rows64, y64 = rows.astype(np.float64), y.astype(np.float64)
    want = activate(act, y64)
    best, error = solution, np.mean((activate(act, rows64 @ solution) - want) ** 2, axis=0)
    plain = float(error.sum())
    for _ in range(AWARE_ITERATIONS):
        try:
            step = weighted_solve(rows64, *activation_weights(act, y64, rows64 @ solution), ridge=ridge)
            solution = AWARE_DAMPING * solution + (1 - AWARE_DAMPING) * step  # plain IRLS oscillates
        except np.linalg.LinAlgError:
            log.info("%s: weighted fit singular, plain fit kept", name)
            break
        now = np.mean((activate(act, rows64 @ solution) - want) ** 2, axis=0)
        better = now < error  # per output channel: keep the iterate with the least post-activation error
        best, error = np.where(better, solution, best), np.where(better, now, error)
    (count, width), outputs = rows.shape, y.shape[1]
    chunk = min(outputs, chunk_size(count, width))
    peak = rows64.nbytes + 4 * y64.nbytes + 8 * chunk * (count * width + width * width)
    log.info(
        "%s: activation-aware fit (%s), %d rows x %d unknowns x %d outputs, post-activation error "
        "x%.3f of the plain fit's, %.1f s, ~%.0f MB",
        name, act.kind, count, width, outputs, error.sum() / max(plain, 1e-30),
        time.perf_counter() - started, peak / 2**20,
    )  # fmt: skip
    return best
