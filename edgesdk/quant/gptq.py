"""GPTQ weight rounding onto the fixed per-channel int8 grid (``quantize.weight_rounding: gptq``).

Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers" (the OBQ update of Frantar & Alistarh 2022, with GPTQ's Cholesky form and lazy
block updates). For a layer ``y = W x`` with sampled inputs ``X`` (im2col patches of a Conv,
``C_in/group x kh x kw`` per group; rows of a Gemm/MatMul input), rounding ``W`` to ``Q`` costs
``tr((W - Q) H (W - Q)^T)`` with ``H = X X^T``. The columns of ``W`` are quantised one at a
time, in order of decreasing ``H_ii`` ("act order"); each column's rounding error, divided by
the Cholesky factor's diagonal, is spread onto the not yet quantised columns
(``W[:, j>i] -= err_i * U[i, j>i]``, ``U^T U = H^-1``), so they compensate for it.

The grid is the one TensorRT and :mod:`edgesdk.quant.qdq` use: per output channel (row),
symmetric, ``scale = max|W_row| / 127`` of the *original* row, kept fixed. Every value is
clipped to ``[-127, 127]`` and each row's largest-``|w|`` element is pinned to ``+-127``, so the
rounded row's max is again ``127 * scale``: TensorRT quantising the rounded *float* weights
(the calibration-cache path) recomputes the same scale and lands exactly on ``Q``, and the Q/DQ
model's weight quantisation is the identity on them. Grouped and depthwise convs get one
``H`` per group (all groups of a layer in one batched computation).

``H`` comes from the float model's own activations on calibration images (a bounded number
of sampled output positions per image; ``H`` is damped by ``DAMP * mean(diag H)``). The float
bias is free, so by default (:data:`CENTERED`) ``H`` is the input *covariance* and the mean
output shift ``(Q - W) E[x]`` is subtracted from the layer's bias (bias correction in the
float model, so the cache path gets it too; the Q/DQ model's ``bias_correction`` then finds
nothing left: its weights are already on the grid). Like
equalisation, this changes the float model: ``edgesdk calibrate -o DIR`` writes it as
``DIR/model.onnx`` and ``deploy --calibration DIR`` bundles it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.quant.qdq import INT8_MAX, decoder_tail, is_kept, node_key

if TYPE_CHECKING:
    pass

__all__ = [
    "CENTERED",
    "DAMP",
    "InputMoments",
    "IMAGES",
    "POSITIONS",
    "WeightRounding",
    "collect_hessians",
    "gptq_rows",
    "nearest_rows",
    "reconstruction_error",
    "round_weights",
    "rounding_layers",
]

DAMP = 0.01
"""Damping of ``H``: ``DAMP * mean(diag H)`` is added to its diagonal."""
IMAGES = 32
"""Calibration images ``H`` is measured on when calibrating (``quantize.weight_rounding: gptq``)."""
POSITIONS = 1024
"""Sampled output positions per image and Conv (all of them when the output is smaller)."""
BLOCK = 128
"""Columns per lazy block update."""
CENTERED = True
"""Round on the input covariance and fold the mean output shift into the bias (see :func:`round_weights`)."""


@dataclass
class WeightRounding:
    """What :func:`round_weights` did.

    Attributes:
        graph: the graph with rounded weights (float values on the int8 grid).
        errors: node key -> (round-to-nearest, GPTQ) relative reconstruction error on the
            sampled inputs, ``tr(dW H dW^T) / tr(W H W^T)``.
        images: batches ``H`` was measured on.
        samples: node key -> input samples (patches or rows) behind its ``H``.
    """

    graph: gs.Graph
    errors: dict[str, tuple[float, float]] = field(default_factory=dict)
    images: int = 0
    samples: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for summary.json: per layer, nearest vs GPTQ reconstruction error."""
        return {
            "method": "gptq",
            "images": self.images,
            "layers": len(self.errors),
            "error_nearest_vs_gptq": {k: [round(a, 6), round(b, 6)] for k, (a, b) in self.errors.items()},
        }


def _weight(node: gs.Node) -> np.ndarray | None:
    if len(node.inputs) < 2 or not isinstance(node.inputs[1], gs.Constant):
        return None
    return np.asarray(node.inputs[1].values)


def _roundable(node: gs.Node) -> bool:
    weight = _weight(node)
    if weight is None or weight.dtype != np.float32:
        return False
    if node.op == "Conv":
        return weight.ndim == 4
    if node.op == "Gemm":
        return weight.ndim == 2 and not int(node.attrs.get("transA", 0))
    return node.op == "MatMul" and weight.ndim == 2


def rounding_layers(graph: gs.Graph, keep_fp: Collection[str] = ()) -> list[gs.Node]:
    """The Conv (2-D), Gemm and MatMul nodes with constant float32 weights that int8 quantises.

    Nodes in ``keep_fp`` and the decoder tail (:func:`~edgesdk.quant.qdq.decoder_tail`) are
    left out. Toposorts ``graph`` in place.
    """
    graph.toposort()
    tail = decoder_tail(graph)
    return [n for n in graph.nodes if _roundable(n) and id(n) not in tail and not is_kept(n, keep_fp)]


def _groups(node: gs.Node) -> int:
    return int(node.attrs.get("group", 1)) if node.op == "Conv" else 1


def _to_rows(node: gs.Node, weight: np.ndarray) -> np.ndarray:
    """``(G, R, D)`` float64: per group, one row per output channel, columns in input order."""
    if node.op == "Conv":
        groups = _groups(node)
        return weight.astype(np.float64).reshape(groups, weight.shape[0] // groups, -1)
    if node.op == "Gemm" and int(node.attrs.get("transB", 0)):
        return weight.astype(np.float64)[None]
    return weight.astype(np.float64).T[None]  # (K, N) -> N rows of K


def _from_rows(node: gs.Node, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if node.op == "Conv" or (node.op == "Gemm" and int(node.attrs.get("transB", 0))):
        return rows.reshape(shape).astype(np.float32)
    return rows[0].T.astype(np.float32).reshape(shape)


def _row_scales(rows: np.ndarray) -> np.ndarray:
    """``(G, R)`` scales ``max|w| / 127`` as float32 (what qdq writes); all-zero rows get 1."""
    scale = (np.abs(rows).max(axis=2) / INT8_MAX).astype(np.float32)
    return np.where(scale > 0, scale, np.float32(1.0)).astype(np.float64)


def nearest_rows(rows: np.ndarray) -> np.ndarray:
    """Round-to-nearest onto the per-row grid: ``(G, R, D)`` rows -> integer values in [-127, 127]."""
    return np.clip(np.rint(rows / _row_scales(rows)[..., None]), -INT8_MAX, INT8_MAX)


def _inverse_factor(hessian: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor ``U`` of ``H^-1`` (``U^T U = H^-1``), per group; ``H`` damped."""
    h = hessian.copy()
    dead = np.diagonal(h, axis1=1, axis2=2) <= 0
    g_idx, d_idx = np.nonzero(dead)
    h[g_idx, d_idx, d_idx] = 1.0  # an input that is always 0: its column's error costs nothing
    eye = np.eye(h.shape[1])
    for attempt in range(6):
        mean = np.diagonal(h, axis1=1, axis2=2).mean(axis=1)
        damped = h + (damp * 10.0**attempt) * mean[:, None, None] * eye
        try:
            inverse = np.linalg.inv(np.linalg.cholesky(damped))  # L^-1, H^-1 = L^-T L^-1
            return np.asarray(np.linalg.cholesky(inverse.transpose(0, 2, 1) @ inverse).transpose(0, 2, 1))
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("H is not positive definite even with 10^5 x the damping")


def gptq_rows(rows: np.ndarray, hessian: np.ndarray, *, damp: float = DAMP, block: int = BLOCK) -> np.ndarray:
    """GPTQ rounding of ``(G, R, D)`` rows with ``(G, D, D)`` input Hessians (see the module docstring).

    Returns:
        ``(G, R, D)`` integer values in [-127, 127] (float64); each row's largest-``|w|``
        element is ``+-127``, so ``values * scale`` keeps the row's ``max|w|``.
    """
    groups, _r, columns = rows.shape
    scale = _row_scales(rows)
    order = np.argsort(-np.diagonal(hessian, axis1=1, axis2=2), axis=1, kind="stable")  # act order
    w = np.take_along_axis(rows, order[:, None, :], axis=2).copy()
    g_idx = np.arange(groups)[:, None, None]
    factor = _inverse_factor(hessian[g_idx, order[:, :, None], order[:, None, :]], damp)
    pinned = np.abs(w).argmax(axis=2)  # (G, R): the column holding each row's max |w|
    sign = np.sign(np.take_along_axis(w, pinned[..., None], axis=2)[..., 0])
    q = np.zeros_like(w)
    for start in range(0, columns, block):
        stop = min(start + block, columns)
        errors = np.zeros(w.shape[:2] + (stop - start,))
        for i in range(start, stop):
            column = w[:, :, i]
            rounded = np.clip(np.rint(column / scale), -INT8_MAX, INT8_MAX)
            rounded = np.where(pinned == i, sign * INT8_MAX, rounded)
            q[:, :, i] = rounded
            err = (column - rounded * scale) / factor[:, i, i][:, None]
            w[:, :, i + 1 : stop] -= err[:, :, None] * factor[:, None, i, i + 1 : stop]
            errors[:, :, i - start] = err
        if stop < columns:
            w[:, :, stop:] -= errors @ factor[:, start:stop, stop:]
    out = np.empty_like(q)
    np.put_along_axis(out, order[:, None, :], q, axis=2)
    return out


def reconstruction_error(rows: np.ndarray, rounded: np.ndarray, hessian: np.ndarray) -> float:
    """``tr(dW H dW^T) / tr(W H W^T)`` summed over groups, ``dW = rounded - rows`` (float values)."""
    diff = rounded - rows
    num = np.einsum("grd,gde,gre->", diff, hessian, diff)
    den = np.einsum("grd,gde,gre->", rows, hessian, rows)
    return float(num / den) if den > 0 else 0.0


def _pads(node: gs.Node, size: tuple[int, int], kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    strides = [int(s) for s in node.attrs.get("strides", [1, 1])]
    dilations = [int(d) for d in node.attrs.get("dilations", [1, 1])]
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raw = list(node.attrs.get("pads", [0, 0, 0, 0])) if auto_pad != "VALID" else [0, 0, 0, 0]
        return int(raw[0]), int(raw[1]), int(raw[2]), int(raw[3])
    pads = []
    for axis in range(2):
        out = -(-size[axis] // strides[axis])
        total = max(0, (out - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - size[axis])
        small = total // 2
        pads.append((total - small, small) if auto_pad == "SAME_LOWER" else (small, total - small))
    return pads[0][0], pads[1][0], pads[0][1], pads[1][1]


def _conv_samples(node: gs.Node, x: np.ndarray, rng: np.random.Generator, positions: int) -> np.ndarray:
    """``(S, G, D)`` im2col patches of a Conv input batch ``x`` (N, C, H, W) at sampled output
    positions (``positions`` per image)."""
    from edgesdk.slim.activations import ConvWindow, patches, sample_positions

    shape = np.asarray(node.inputs[1].values).shape
    kernel = (int(shape[2]), int(shape[3]))
    window = ConvWindow(
        kernel,
        tuple(int(s) for s in node.attrs.get("strides", [1, 1])),  # type: ignore[arg-type]
        tuple(int(d) for d in node.attrs.get("dilations", [1, 1])),  # type: ignore[arg-type]
        _pads(node, (x.shape[2], x.shape[3]), kernel),
    )
    top, left, bottom, right = window.pads
    out_hw = tuple(
        (size + lo + hi - (k - 1) * d - 1) // s + 1
        for size, lo, hi, k, d, s in zip(
            x.shape[2:], (top, left), (bottom, right), kernel, window.dilations, window.strides
        )
    )
    chunks = []
    for image in x:
        oy, ox = sample_positions(rng, (out_hw[0], out_hw[1]), positions)
        chunks.append(patches(image, window, oy, ox))
    sampled = np.concatenate(chunks).astype(np.float64)  # (S, C, kh * kw)
    return sampled.reshape(len(sampled), _groups(node), -1)


@dataclass
class InputMoments:
    """Sums over a layer's sampled inputs, per group (``G``) and input column (``D``):
    ``xx`` = sum ``x x^T`` (G, D, D), ``x`` = sum ``x`` (G, D), ``count`` samples."""

    xx: np.ndarray
    x: np.ndarray
    count: int = 0

    @classmethod
    def empty(cls, groups: int, width: int) -> InputMoments:
        """Zero sums for ``(S, groups, width)`` samples."""
        return cls(np.zeros((groups, width, width)), np.zeros((groups, width)))

    def add(self, sampled: np.ndarray) -> None:
        """Fold ``(S, G, D)`` samples in."""
        stacked = sampled.transpose(1, 2, 0)  # (G, D, S)
        self.xx += stacked @ stacked.transpose(0, 2, 1)
        self.x += sampled.sum(axis=0)
        self.count += len(sampled)

    @property
    def mean(self) -> np.ndarray:
        """(G, D) mean input."""
        return self.x / max(self.count, 1)

    def hessian(self, centered: bool) -> np.ndarray:
        """(G, D, D) ``E[x x^T]``, or the covariance ``E[x x^T] - E[x] E[x]^T`` when ``centered``."""
        second = self.xx / max(self.count, 1)
        return second - self.mean[:, :, None] * self.mean[:, None, :] if centered else second


def _runner(model: Any, names: list[str]) -> Any:
    """onnxruntime on ``model`` with the tensors ``names`` as extra outputs (inputs: from the feed)."""
    from edgesdk.graph.io import onnxruntime_runner, to_graph, to_model

    graph = to_graph(model)
    found = graph.tensors()
    for name in names:
        if found[name].dtype is None:
            found[name].dtype = np.float32
    known = {t.name for t in graph.outputs} | {t.name for t in graph.inputs}
    graph.outputs += [found[n] for n in dict.fromkeys(names) if n not in known]
    run = onnxruntime_runner(to_model(graph))
    return lambda feed: {**feed, **run(feed)}


def collect_hessians(
    model: Any,
    nodes: list[gs.Node],
    feeds: Iterable[Mapping[str, np.ndarray]],
    *,
    positions: int = POSITIONS,
    seed: int = 0,
) -> tuple[dict[str, InputMoments], int]:
    """Per node key, the moments of its sampled inputs (float64) over ``feeds``.

    Args:
        model: the float ``onnx.ModelProto`` the nodes belong to (not modified).
        nodes: from :func:`rounding_layers` on a graph of ``model``.
        feeds: input dicts.
        positions: sampled output positions per image for Convs; Gemm/MatMul use every row.
        seed: for the position sampling.

    Returns:
        (moments per node key, feeds run).

    Raises:
        GraphError: onnxruntime cannot run the model.
    """
    run = _runner(model, [n.inputs[0].name for n in nodes])
    rng = np.random.default_rng(seed)
    moments: dict[str, InputMoments] = {}
    count = 0
    for feed in feeds:
        values = run(feed)
        count += 1
        for node in nodes:
            x = np.asarray(values[node.inputs[0].name])
            if node.op == "Conv":
                sampled = _conv_samples(node, x, rng, positions)
            else:
                sampled = x.reshape(-1, 1, x.shape[-1]).astype(np.float64)
            key = node_key(node)
            if key not in moments:
                moments[key] = InputMoments.empty(*sampled.shape[1:])
            moments[key].add(sampled)
    return moments, count


def _shift_bias(node: gs.Node, key: str, shift: np.ndarray) -> None:
    """Subtract ``shift`` (per output channel) from the node's constant bias (added when absent).

    MatMul (no bias), computed biases, Gemm with ``alpha``/``beta`` != 1 or a broadcast bias of
    another shape are left alone (their mean shift stays).
    """
    scaled = node.op == "Gemm" and (node.attrs.get("alpha", 1.0) != 1.0 or node.attrs.get("beta", 1.0) != 1.0)
    if node.op == "MatMul" or scaled:
        return
    if len(node.inputs) <= 2:
        node.inputs.append(gs.Constant(f"{key}_bias_gptq", (-shift).astype(np.float32)))
        return
    old = node.inputs[2]
    if isinstance(old, gs.Constant) and np.asarray(old.values).shape == shift.shape:
        node.inputs[2] = gs.Constant(
            f"{key}_bias_gptq", (np.asarray(old.values, np.float64) - shift).astype(np.float32)
        )


def round_weights(
    graph: gs.Graph,
    feeds: Iterable[Mapping[str, np.ndarray]],
    *,
    keep_fp: Collection[str] = (),
    positions: int = POSITIONS,
    damp: float = DAMP,
    centered: bool = CENTERED,
) -> WeightRounding:
    """GPTQ-round every quantised layer's weights of ``graph`` (in place; see the module docstring).

    Args:
        graph: the float model's graph. Rounded weights become new constants
            (``<node>_weight_gptq``); names of nodes and activations are kept.
        feeds: calibration input dicts ``H`` is measured on (the float model's activations).
        keep_fp: node names left alone (kept in float by ``quantize.keep_fp``).
        positions: sampled output positions per image and Conv.
        damp: relative damping of ``H``.
        centered: round on the input covariance and move the mean output shift
            ``(Q - W) E[x]`` into the float bias (``<node>_bias_gptq``; MatMul has no bias).

    Raises:
        GraphError: onnxruntime cannot run the model.
    """
    from edgesdk.graph.io import to_model

    nodes = rounding_layers(graph, keep_fp)
    result = WeightRounding(graph)
    if not nodes:
        return result
    moments, result.images = collect_hessians(to_model(graph), nodes, feeds, positions=positions)
    for node in nodes:
        key = node_key(node)
        if key not in moments:
            continue
        weight = np.asarray(node.inputs[1].values)
        rows, hessian = _to_rows(node, weight), moments[key].hessian(centered)
        scale = _row_scales(rows)[..., None]
        rounded = gptq_rows(rows, hessian, damp=damp) * scale
        result.errors[key] = (
            reconstruction_error(rows, nearest_rows(rows) * scale, hessian),
            reconstruction_error(rows, rounded, hessian),
        )
        result.samples[key] = moments[key].count
        node.inputs[1] = gs.Constant(f"{key}_weight_gptq", _from_rows(node, rounded, weight.shape))
        if centered:
            shift = np.einsum("grd,gd->gr", rounded - rows, moments[key].mean)
            _shift_bias(node, key, shift.reshape(-1))
    return result
