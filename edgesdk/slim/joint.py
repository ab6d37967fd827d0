"""Joint reconstruction: refit a cut layer's kept filters together with the layers that read them.

The least-squares refit (:mod:`edgesdk.slim.reconstruct`) keeps the cut layer's remaining
filters as they were and refits only its consumers. Here they change together: for a cut Conv
whose output reaches its consumers through per-channel operations only (a BatchNormalization,
an activation: Relu / LeakyRelu / PRelu / Clip / SiLU, and at most one depthwise Conv with its
own BatchNormalization and activation), the kept filters, the depthwise filters and the
consumers' weights are fitted together to what the ORIGINAL consumers computed, on sampled
output positions of the calibration images. It is the refit's objective, minimised over the
whole block through its activations (Adam, starting from the least-squares solution). No labels
and no end-to-end training: each block is fitted alone against the original model's own
outputs, as the least-squares refit is. A tenth of the sampled positions is held out, and the
weights with the least held-out error are kept, so on those positions the result is never
worse than the least-squares refit it starts from.

Blocks that do not qualify (several sources tied by an Add, a Concat between the layers, a Gemm
consumer) keep the least-squares refit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import constant_value, is_empty_input, static_shape
from edgesdk.slim.activations import ConvWindow, Feed, Probe, patches
from edgesdk.slim.aware import activation_of
from edgesdk.slim.reconstruct import weight_matrix, write_solution

log = logging.getLogger(__name__)

JOINT_ITERATIONS = 600
"""Adam steps per block at most (the recipe's ``slim.joint`` default; ``refit(joint=N)``)."""
JOINT_BATCH = 1024
"""Sampled consumer positions per step (2048 at half the step size: the same held-out errors on
ultraface, twice the time; docs/benchmarks.md)."""
JOINT_LR = 2e-3
"""Step size relative to the mean magnitude of each weight tensor."""
JOINT_SAMPLE_BYTES = 192 * 2**20
"""Memory for the sampled input windows of one block (fewer positions when they are wide)."""
JOINT_POSITIONS = 20_000
"""Sampled consumer positions per block at most (spread over the calibration images)."""
JOINT_CHECK_EVERY = 50
"""Held-out error checked every so many steps."""
JOINT_PATIENCE = 4
"""Stop after this many checks without a 0.1 % better held-out error."""
JOINT_STEP_MACS = 1e8
"""Multiply-adds of a step's first layer at most (wide blocks take smaller batches)."""
JOINT_MIN_BATCH = 128
"""Sampled positions per consumer per step at least."""


@dataclass(frozen=True)
class Step:
    """One per-channel operation between the cut layer and its consumers.

    ``kind``: ``affine`` (``x * scale + shift``: an inference BatchNormalization), ``relu``,
    ``leaky`` / ``prelu`` (``slope`` below 0), ``clip`` (``low``..``high``) or ``silu``.
    """

    kind: str
    scale: np.ndarray | float = 1.0
    shift: np.ndarray | float = 0.0
    low: float = 0.0
    high: float = float("inf")

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | float]:
        """(output, derivative) for pre-step values ``x`` ``[..., C]``."""
        if self.kind == "affine":
            return x * self.scale + self.shift, self.scale
        if self.kind == "relu":
            return np.maximum(x, 0), (x > 0).astype(x.dtype)
        if self.kind in ("leaky", "prelu"):
            slope = np.asarray(self.scale, x.dtype)
            return np.where(x >= 0, x, slope * x), np.where(x >= 0, np.ones((), x.dtype), slope)
        if self.kind == "clip":
            inside = (x > self.low) & (x < self.high)
            return np.clip(x, self.low, self.high), inside.astype(x.dtype)
        sig = 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))  # silu
        return x * sig, sig * (1 + x * (1 - sig))


@dataclass
class Block:
    """A cut Conv (``source``), the per-channel ``steps`` after it, optionally a depthwise Conv and
    its own ``after`` steps, and the Convs that read the result (``consumers``)."""

    source: gs.Node
    steps: list[Step]
    consumers: list[gs.Node]
    depthwise: gs.Node | None = None
    after: list[Step] = field(default_factory=list)

    @property
    def layers(self) -> list[gs.Node]:
        """Every conv whose weights the joint fit changes."""
        return [self.source, *([self.depthwise] if self.depthwise is not None else []), *self.consumers]


def _single_reader(tensor: gs.Tensor, outputs: set[str]) -> gs.Node | None:
    readers = list(tensor.outputs)
    return readers[0] if len(readers) == 1 and tensor.name not in outputs else None


def _const(tensor: gs.Tensor) -> np.ndarray | None:
    value = constant_value(tensor) if not is_empty_input(tensor) else None
    return None if value is None else np.asarray(value, np.float32)


def _bn_step(node: gs.Node) -> Step | None:
    values = [_const(t) for t in node.inputs[1:5]]
    gamma, beta, mean, var = values
    if gamma is None or beta is None or mean is None or var is None:
        return None
    scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    return Step("affine", scale.astype(np.float32), (beta - mean * scale).astype(np.float32))


def _activation_step(node: gs.Node, tensor: gs.Tensor, outputs: set[str]) -> tuple[Step, gs.Tensor] | None:
    """The activation ``node`` (reading ``tensor``) as a step, and the tensor it produces."""
    act = activation_of(node)
    if act is not None:
        if act.kind == "clip":
            return Step("clip", low=act.low, high=act.high), node.outputs[0]
        return Step(act.kind, act.slope), node.outputs[0]  # relu, leaky, prelu: slope below 0
    if node.op == "Sigmoid":  # SiLU: Mul(x, Sigmoid(x)); x is read by exactly these two nodes
        readers = list(tensor.outputs)
        sig_out = node.outputs[0]
        mul = _single_reader(sig_out, outputs)
        if len(readers) == 2 and mul is not None and mul.op == "Mul" and mul in readers:
            if {t.name for t in mul.inputs} == {tensor.name, sig_out.name}:
                return Step("silu"), mul.outputs[0]
    return None


def _is_plain_conv(node: gs.Node) -> bool:
    return (
        node.op == "Conv"
        and int(node.attrs.get("group", 1)) == 1
        and len(static_shape(node.inputs[1]) or ()) == 4
        and _const(node.inputs[1]) is not None
        and (len(node.inputs) < 3 or is_empty_input(node.inputs[2]) or _const(node.inputs[2]) is not None)
    )


def _is_depthwise(node: gs.Node) -> bool:
    shape = static_shape(node.inputs[1]) or ()
    groups = int(node.attrs.get("group", 1))
    return (
        node.op == "Conv"
        and len(shape) == 4
        and groups > 1
        and shape[0] == groups
        and shape[1] == 1
        and _const(node.inputs[1]) is not None
        and (len(node.inputs) < 3 or is_empty_input(node.inputs[2]) or _const(node.inputs[2]) is not None)
        and static_shape(node.outputs[0]) is not None
    )


def _steps_from(tensor: gs.Tensor, outputs: set[str]) -> tuple[list[Step], gs.Tensor] | None:
    """An optional BatchNormalization, then an optional activation, from ``tensor`` on."""
    steps = []
    reader = _single_reader(tensor, outputs)
    if reader is not None and reader.op == "BatchNormalization":
        step = _bn_step(reader)
        if step is None:
            return None
        steps.append(step)
        tensor = reader.outputs[0]
    readers = list(tensor.outputs)
    if tensor.name in outputs or not readers:
        return None
    first = readers[0] if len(readers) == 1 else next((r for r in readers if r.op == "Sigmoid"), None)
    if first is not None and first.op != "Conv":
        found = _activation_step(first, tensor, outputs)
        if found is None:
            return None
        steps.append(found[0])
        tensor = found[1]
    return (steps, tensor) if tensor.name not in outputs and tensor.outputs else None


def find_block(graph: gs.Graph, source: gs.Node) -> Block | None:
    """The block starting at ``source`` (see the module docstring), or None when it does not qualify."""
    outputs = {t.name for t in graph.outputs}
    if not _is_plain_conv(source) or static_shape(source.outputs[0]) is None:
        return None
    found = _steps_from(source.outputs[0], outputs)
    if found is None:
        return None
    steps, tensor = found
    depthwise: gs.Node | None = None
    after: list[Step] = []
    readers = list(tensor.outputs)
    if len(readers) == 1 and _is_depthwise(readers[0]) and readers[0].inputs[0] is tensor:
        depthwise = readers[0]
        found = _steps_from(depthwise.outputs[0], outputs)
        if found is None:
            return None
        after, tensor = found
    consumers = list(tensor.outputs)
    if not all(_is_plain_conv(c) and c.inputs[0] is tensor for c in consumers):
        return None
    if any(static_shape(c.outputs[0]) is None for c in consumers):
        return None
    return Block(source, steps, consumers, depthwise, after)


@dataclass
class _Samples:
    """One consumer's sampled positions: source input windows, validity masks, original outputs."""

    windows: np.ndarray  # [S, Q * P, U]: Q consumer taps, P depthwise taps (1 without), U source patch + 1
    valid: np.ndarray  # [S, Q]: 0 where a consumer tap falls in the consumer's zero padding
    target: np.ndarray  # [S, O]
    inner: np.ndarray | None = None  # [S, Q, P]: 0 where a depthwise tap falls in its zero padding


def _taps(window: ConvWindow, oy: np.ndarray, ox: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Input rows / columns ``[S, Q]`` each output position of a conv reads, and whether inside."""
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.strides, window.dilations
    top, left = window.pads[0], window.pads[1]
    iy = (oy[:, None, None] * sh - top + np.arange(kh)[None, :, None] * dh).repeat(kw, axis=2)
    ix = (ox[:, None, None] * sw - left + np.arange(kw)[None, None, :] * dw).repeat(kh, axis=1)
    iy, ix = iy.reshape(len(oy), -1), ix.reshape(len(ox), -1)
    inside = (iy >= 0) & (iy < hw[0]) & (ix >= 0) & (ix < hw[1])
    return np.clip(iy, 0, hw[0] - 1), np.clip(ix, 0, hw[1] - 1), inside


def _hw(tensor: gs.Tensor) -> tuple[int, int]:
    shape = static_shape(tensor) or (0, 0, 0, 0)
    return int(shape[2]), int(shape[3])


def _sample(
    block: Block,
    images: Iterable[tuple[np.ndarray, Mapping[str, np.ndarray]]],
    count: int,
    out_masks: Mapping[str, np.ndarray | None],
    rng: np.random.Generator,
) -> dict[str, _Samples]:
    """Sample each consumer's output positions over ``count`` images.

    ``images`` yields, per image, the source's input and the original consumers' outputs (one
    image at a time: only the samples are kept). The positions are drawn before any image is
    read (they depend on the shapes only)."""
    source_window = ConvWindow.of(block.source)
    source_hw = _hw(block.source.outputs[0])
    inner = ConvWindow.of(block.depthwise) if block.depthwise is not None else None
    middle_hw = _hw(block.depthwise.outputs[0]) if block.depthwise is not None else source_hw
    deep = inner.kernel[0] * inner.kernel[1] if inner is not None else 1
    width = int(np.prod((static_shape(block.source.inputs[1]) or (1, 1))[1:])) + 1
    geometry = {c.name: ConvWindow.of(c) for c in block.consumers}
    drawn: dict[str, list[np.ndarray]] = {}
    for consumer in block.consumers:
        window = geometry[consumer.name]
        taps = window.kernel[0] * window.kernel[1]
        budget = int(JOINT_SAMPLE_BYTES // (4 * taps * deep * width * len(block.consumers)))
        per_image = max(1, min(JOINT_POSITIONS, budget) // max(1, count))
        out_h, out_w = _hw(consumer.outputs[0])
        size = min(per_image, out_h * out_w)
        drawn[consumer.name] = [rng.choice(out_h * out_w, size=size, replace=False) for _ in range(count)]
    parts: dict[str, tuple[list[np.ndarray], ...]] = {c.name: ([], [], [], []) for c in block.consumers}
    for index, (x, outputs) in enumerate(images):
        for consumer in block.consumers:
            window = geometry[consumer.name]
            taps = window.kernel[0] * window.kernel[1]
            out_w = _hw(consumer.outputs[0])[1]
            flat = drawn[consumer.name][index]
            oy, ox = flat // out_w, flat % out_w
            iy, ix, inside = _taps(window, oy, ox, middle_hw)
            windows, valid, wanted, inner_valid = parts[consumer.name]
            if inner is not None:
                iy, ix, deep_inside = _taps(inner, iy.reshape(-1), ix.reshape(-1), source_hw)
                inner_valid.append(deep_inside.reshape(len(oy), taps, deep).astype(np.float32))
            cut = patches(x, source_window, iy.reshape(-1), ix.reshape(-1)).reshape(len(oy), taps * deep, -1)
            windows.append(np.concatenate([cut, np.ones((len(oy), taps * deep, 1), np.float32)], axis=2))
            valid.append(inside.astype(np.float32))
            mask = out_masks.get(consumer.name)
            picked = outputs[consumer.name][:, oy, ox].T
            wanted.append(picked[:, mask] if mask is not None else picked)
    return {
        name: _Samples(
            np.concatenate(windows).astype(np.float32),
            np.concatenate(valid),
            np.concatenate(wanted).astype(np.float32),
            np.concatenate(inner_valid) if inner_valid else None,
        )
        for name, (windows, valid, wanted, inner_valid) in parts.items()
    }


def _images(
    graph: gs.Graph, original: gs.Graph, block: Block, feeds: Sequence[Feed]
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Per image: the source's input in the pruned ``graph``, the consumers' outputs in ``original``."""
    onodes = {n.name: n for n in original.nodes}
    source_input = block.source.inputs[0].name
    outputs = {c.name: onodes[c.name].outputs[0].name for c in block.consumers}
    pruned = Probe(graph, [source_input]).run(feeds)
    unpruned = Probe(original, list(outputs.values())).run(feeds)
    for got, want in zip(pruned, unpruned):
        for i, x in enumerate(got[source_input]):
            yield x, {name: want[tensor][i] for name, tensor in outputs.items()}


def _weights(node: gs.Node) -> np.ndarray:
    """``[C*k + 1, O]``: the node's weight (transposed, flattened) with its bias as the last row."""
    weight, bias = weight_matrix(node)
    return np.concatenate([weight.T, bias[None]], axis=0).astype(np.float32)


def _forward(steps: Sequence[Step], z: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | float]]:
    slopes = []
    for step in steps:
        z, slope = step.forward(z)
        slopes.append(slope)
    return z, slopes


def _backward(slopes: Sequence[np.ndarray | float], grad: np.ndarray) -> np.ndarray:
    for slope in reversed(slopes):
        grad = grad * slope
    return grad


class _Fit:
    """The block's loss and gradient on a batch of samples (numpy)."""

    def __init__(self, block: Block, samples: Mapping[str, _Samples]) -> None:
        self.block = block
        self.samples = samples
        self.energy = {name: float(np.sum(np.var(s.target, axis=0))) + 1e-12 for name, s in samples.items()}

    def loss(
        self, params: Mapping[str, np.ndarray], rows: Mapping[str, np.ndarray], grad: bool
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Relative squared error summed over the consumers, and (``grad``) its gradient per weight."""
        block = self.block
        source = params[block.source.name]
        depthwise = params[block.depthwise.name] if block.depthwise is not None else None  # [P + 1, k]
        k = source.shape[1]
        total, grads = 0.0, {name: np.zeros_like(p) for name, p in params.items()}
        for consumer in block.consumers:
            s, pick = self.samples[consumer.name], rows[consumer.name]
            x, valid = s.windows[pick], s.valid[pick]
            n, taps, width = x.shape[0], valid.shape[1], x.shape[2]
            a, inner_slopes = _forward(block.steps, (x.reshape(-1, width) @ source).reshape(n, taps, -1, k))
            if depthwise is not None and s.inner is not None:
                a = a * s.inner[pick][..., None]  # [n, Q, P, k]
                mid = np.einsum("nqpc,pc->nqc", a, depthwise[:-1]) + depthwise[-1]
                mid, outer_slopes = _forward(block.after, mid)
            else:
                mid, outer_slopes = a[:, :, 0], []
            mid = mid * valid[:, :, None]
            feats = mid.transpose(0, 2, 1).reshape(n, k * taps)  # the consumer's [C, kh*kw] layout
            weights = params[consumer.name]
            diff = feats @ weights[:-1] + weights[-1] - s.target[pick]
            total += float(np.sum(diff**2)) / (self.energy[consumer.name] * n)
            if not grad:
                continue
            d = (2.0 / (self.energy[consumer.name] * n)) * diff
            grads[consumer.name] += np.concatenate([feats.T @ d, d.sum(axis=0, keepdims=True)])
            dmid = (d @ weights[:-1].T).reshape(n, k, taps).transpose(0, 2, 1) * valid[:, :, None]
            if depthwise is not None and s.inner is not None:
                dmid = _backward(outer_slopes, dmid)
                grads[block.depthwise.name] += np.concatenate(  # type: ignore[union-attr]
                    [np.einsum("nqpc,nqc->pc", a, dmid), dmid.sum(axis=(0, 1))[None]]
                )
                da = np.einsum("nqc,pc->nqpc", dmid, depthwise[:-1]) * s.inner[pick][..., None]
            else:
                da = dmid[:, :, None]
            da = _backward(inner_slopes, da)
            grads[block.source.name] += x.reshape(-1, width).T @ da.reshape(-1, k)
        return total, grads


def fit_block(
    block: Block,
    samples: Mapping[str, _Samples],
    *,
    iterations: int = JOINT_ITERATIONS,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], float, float]:
    """Adam on the block's weights from their current values.

    Returns:
        (the weights with the least held-out error, that error, the starting held-out error);
        errors are relative (sum over consumers of squared error over target variance).
    """
    rng = np.random.default_rng(seed)
    fit = _Fit(block, samples)
    params = {layer.name: _weights(layer) for layer in block.layers}
    held, train = {}, {}
    for name, s in samples.items():
        order = rng.permutation(len(s.target))
        cut = max(1, len(order) // 10)
        held[name], train[name] = order[:cut], order[cut:]
    start, _ = fit.loss(params, held, grad=False)
    best, best_error = {k: v.copy() for k, v in params.items()}, start
    first = {k: np.zeros_like(v) for k, v in params.items()}
    second = {k: np.zeros_like(v) for k, v in params.items()}
    scale = {k: float(np.mean(np.abs(v))) + 1e-8 for k, v in params.items()}
    rows = _batch_rows(block, samples)
    stale = 0
    for step in range(1, iterations + 1):
        batch = {
            name: idx[rng.integers(0, len(idx), size=min(len(idx), rows))] for name, idx in train.items()
        }
        _, grads = fit.loss(params, batch, grad=True)
        for key, g in grads.items():
            first[key] = 0.9 * first[key] + 0.1 * g
            second[key] = 0.999 * second[key] + 0.001 * g * g
            m_hat, v_hat = first[key] / (1 - 0.9**step), second[key] / (1 - 0.999**step)
            params[key] -= JOINT_LR * scale[key] * m_hat / (np.sqrt(v_hat) + 1e-12)
        if step % JOINT_CHECK_EVERY == 0 or step == iterations:
            error, _ = fit.loss(params, held, grad=False)
            stale = 0 if error < (1 - 1e-3) * best_error else stale + 1
            if error < best_error:
                best, best_error = {k: v.copy() for k, v in params.items()}, error
            if stale >= JOINT_PATIENCE:
                break
    return best, best_error, start


def _batch_rows(block: Block, samples: Mapping[str, _Samples]) -> int:
    """Sampled positions per consumer per step: :data:`JOINT_BATCH` in all, fewer for wide blocks."""
    k = int((static_shape(block.source.inputs[1]) or (1,))[0])
    widest = max(s.windows.shape[1] * s.windows.shape[2] for s in samples.values())
    fits = int(JOINT_STEP_MACS // max(1, widest * k * len(samples)))
    return max(JOINT_MIN_BATCH, min(JOINT_BATCH // len(samples), fits))


def joint_refit(
    graph: gs.Graph,
    original: gs.Graph,
    blocks: Sequence[Block],
    out_masks: Mapping[str, np.ndarray | None],
    feeds: Sequence[Feed],
    *,
    iterations: int = JOINT_ITERATIONS,
    seed: int = 0,
    before_block: Callable[[], None] | None = None,
) -> int:
    """Fit each block of the pruned ``graph`` (in place) to the ``original`` graph's consumer outputs.

    Args:
        graph: the pruned graph, consumers already refitted by least squares.
        original: the unpruned graph (prepared; same node names).
        blocks: from :func:`find_block` on ``graph``.
        out_masks: consumer name -> its kept output channels (None: all).
        feeds: calibration feeds.
        before_block: called before each block (progress).

    Returns:
        The number of blocks whose weights changed.
    """
    if not blocks or not feeds or iterations <= 0:
        return 0
    rng = np.random.default_rng(seed)
    changed = 0
    for block in blocks:
        if before_block is not None:
            before_block()
        started = time.perf_counter()
        names = [c.name for c in block.consumers]
        count = sum(len(next(iter(feed.values()))) for feed in feeds)
        samples = _sample(block, _images(graph, original, block, feeds), count, out_masks, rng)
        weights, error, before = fit_block(block, samples, iterations=iterations, seed=seed)
        if error < before:
            for layer in block.layers:
                write_solution(layer, weights[layer.name].astype(np.float64))
            changed += 1
        shapes = ", ".join(
            f"{s.windows.shape[0]}x{s.windows.shape[1]}x{s.windows.shape[2]}" for s in samples.values()
        )
        log.info(
            "%s -> %s: joint refit, held-out error %.4f -> %.4f (%.1f s; %d filters, samples %s, %d per step)",
            block.source.name, ", ".join(names), before, error, time.perf_counter() - started,
            len(weights[block.source.name].T), shapes, _batch_rows(block, samples),
        )  # fmt: skip
    return changed
