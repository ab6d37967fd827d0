"""Latency cost model: predicted onnxruntime CPU time as a function of the kept channels.

FLOPs are a poor proxy for time on a CPU: a Conv's time follows its channel counts rounded
UP to the kernel's channel block (onnxruntime's NCHWc kernels use blocks of 16 floats with
AVX-512 and 8 with AVX2, so 24 channels cost what 32 do), memory-bound work (depthwise convs,
activations, concatenations, resizes) follows the activation size, not the FLOPs, and every
node has a fixed cost. The model here is

``ms(keep) = sum_conv (a * MACs_padded + m * out_elements_padded + c) + b * sum_other elements + rest``

with ``a, m, c`` fitted by least squares on the per-node times of ONE onnxruntime profile of
the original model (1 thread, all graph optimisations, medians of a few runs; calibrated once
per model) and ``b`` the measured time of the other nodes per element of the original graph's
non-Conv activations. Channel counts come from the planner's keep vector
(:meth:`edgesdk.slim.groups.ChannelAnalysis.keep_vector`), so evaluating a candidate is pure
numpy. The absolute numbers are rough; what the planner needs is how much time each channel
saves relative to the others.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk._lazy import require
from edgesdk.graph._util import constant_value, static_shape
from edgesdk.graph.io import model_bytes, to_model
from edgesdk.slim.criteria import ScoreContext
from edgesdk.slim.groups import ChannelAnalysis

log = logging.getLogger(__name__)

PROFILE_RUNS = 5
"""Profiled runs (after one warm-up) whose per-node medians calibrate the model."""
SKIPPED_OPS = frozenset({"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Identity", "Cast"})
"""Ops whose time is not modelled (tiny, or shape arithmetic)."""


def host_block() -> int:
    """Channel block of onnxruntime's NCHWc convolution kernels on this CPU: 16 with AVX-512F, else 8."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 8
    return 16 if " avx512f" in flags else 8


def _pad(count: float, block: int) -> float:
    return float(math.ceil(count / block) * block) if block > 1 else float(count)


@dataclass(frozen=True)
class _Channels:
    """A channel count read from the keep vector (``ids``) or fixed."""

    ids: np.ndarray | None
    fixed: int

    def count(self, keep: np.ndarray | None) -> int:
        return self.fixed if self.ids is None or keep is None else int(keep[self.ids].sum())


@dataclass(frozen=True)
class _Conv:
    out: _Channels
    inp: _Channels
    group: int
    spatial: int  # N * H_out * W_out
    kernel: int  # kh * kw


@dataclass(frozen=True)
class _Other:
    channels: _Channels
    spatial: int


@dataclass
class LatencyModel:
    """Predicted milliseconds of a graph as a function of a keep vector (see module doc).

    Attributes:
        convs / others: the modelled nodes.
        per_mac / per_out / per_conv: conv coefficients (ms per padded MAC, per padded output
            element, per node).
        per_element: ms per output element of the other nodes.
        rest: ms of what is not modelled (measured total minus the modelled share).
        block: channel block the conv counts are padded to.
    """

    convs: list[_Conv]
    others: list[_Other]
    per_mac: float
    per_out: float
    per_conv: float
    per_element: float
    rest: float
    block: int

    def _conv_features(self, keep: np.ndarray | None) -> np.ndarray:
        rows = []
        for conv in self.convs:
            out = _pad(conv.out.count(keep), self.block)
            inp = conv.inp.count(keep)
            per_group = inp / conv.group if conv.group > 1 else _pad(inp, self.block)
            if conv.group > 1 and conv.group == conv.inp.fixed:  # depthwise: one input channel per output
                per_group = 1.0
            rows.append((conv.spatial * conv.kernel * out * per_group, conv.spatial * out))
        return np.asarray(rows, dtype=np.float64).reshape(-1, 2)

    def ms(self, keep: np.ndarray | None = None) -> float:
        """Predicted latency (ms) with the channels flagged in ``keep`` (None: everything kept)."""
        features = self._conv_features(keep)
        conv = float((features @ np.array([self.per_mac, self.per_out])).sum())
        conv += self.per_conv * len(self.convs)
        other = sum(o.spatial * o.channels.count(keep) for o in self.others) * self.per_element
        return self.rest + conv + other


def _channels(tensor: gs.Tensor, analysis: ChannelAnalysis, fixed: int) -> _Channels:
    return _Channels(analysis.tensor_classes.get(tensor.name), fixed)


def _describe(graph: gs.Graph, analysis: ChannelAnalysis) -> tuple[list[_Conv], list[_Other]]:
    convs: list[_Conv] = []
    others: list[_Other] = []
    for node in graph.nodes:
        if node.op in SKIPPED_OPS or not node.outputs:
            continue
        out = static_shape(node.outputs[0])
        if out is None or len(out) != 4:
            continue
        spatial = out[0] * out[2] * out[3]
        if node.op == "Conv":
            weight = constant_value(node.inputs[1])
            x = static_shape(node.inputs[0])
            if weight is None or x is None:
                continue
            kernel = int(np.prod(np.asarray(weight).shape[2:]))
            convs.append(
                _Conv(
                    _channels(node.outputs[0], analysis, out[1]),
                    _channels(node.inputs[0], analysis, x[1]),
                    int(node.attrs.get("group", 1)),
                    spatial,
                    kernel,
                )
            )
        elif node.op != "BatchNormalization":  # onnxruntime folds BN into the conv
            others.append(_Other(_channels(node.outputs[0], analysis, out[1]), spatial))
    return convs, others


def profile_nodes(model: onnx.ModelProto, *, runs: int = PROFILE_RUNS) -> list[tuple[str, float, dict]]:
    """Per node of onnxruntime's optimised graph: (op, median ms over ``runs``, profile args).

    One thread, all graph optimisations, uniform random input (as :mod:`edgesdk.slim.measure`).
    Profiling slows every node down by a roughly fixed amount: the excess of the profiled total
    over the fastest unprofiled run is spread evenly over the nodes and subtracted.
    """
    from edgesdk.slim.measure import random_feed

    ort = require("onnxruntime", feature="the latency cost model", hint="pip install onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    feed = random_feed(model)
    plain = ort.InferenceSession(model_bytes(model), options, providers=["CPUExecutionProvider"])
    plain.run(None, feed)
    wall = []
    for _ in range(runs):
        start = time.perf_counter()
        plain.run(None, feed)
        wall.append((time.perf_counter() - start) * 1000.0)
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(model_bytes(model), options, providers=["CPUExecutionProvider"])
        session.run(None, feed)  # warm-up: its events are dropped below (first of each node)
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    times: dict[str, list[float]] = defaultdict(list)
    args: dict[str, dict] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            times[name].append(float(event["dur"]) / 1000.0)
            args[name] = event.get("args", {})
    medians = {n: statistics.median(t[1:] or t) for n, t in times.items()}
    overhead = max(0.0, (sum(medians.values()) - min(wall)) / max(1, len(medians)))  # profiling's own cost
    return [(str(args[n].get("op_name", "")), max(0.0, ms - overhead), args[n]) for n, ms in medians.items()]


def _event_conv_features(args: dict, block: int) -> tuple[float, float] | None:
    shapes = [next(iter(s.values())) for s in args.get("input_type_shape", [])]
    outs = [next(iter(s.values())) for s in args.get("output_type_shape", [])]
    if len(shapes) < 2 or not outs or len(outs[0]) != 4 or len(shapes[1]) != 4:
        return None
    out, weight, x = outs[0], shapes[1], shapes[0]
    spatial = out[0] * out[2] * out[3]
    kernel = weight[2] * weight[3]
    depthwise = weight[1] == 1 and len(x) == 4 and x[1] == out[1] and out[1] > 1
    per_group = 1.0 if depthwise else _pad(weight[1], block)
    return spatial * kernel * _pad(out[1], block) * per_group, spatial * _pad(out[1], block)


def _fit_convs(samples: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Non-negative least squares ``ms = a MACs + m outs + c`` (features dropped until all >= 0)."""
    if not samples:
        return 0.0, 0.0, 0.0
    data = np.asarray(samples, dtype=np.float64)
    features, target = np.column_stack([data[:, 0], data[:, 1], np.ones(len(data))]), data[:, 2]
    active = [0, 1, 2]
    while active:
        scale = np.abs(features[:, active]).max(axis=0) + 1e-30
        solution = np.linalg.lstsq(features[:, active] / scale, target, rcond=None)[0] / scale
        if (solution >= 0).all():
            coefs = np.zeros(3)
            coefs[active] = solution
            return float(coefs[0]), float(coefs[1]), float(coefs[2])
        active.pop(int(np.argmin(solution)))
    return 0.0, 0.0, 0.0


def latency_model(
    model: onnx.ModelProto, graph: gs.Graph, analysis: ChannelAnalysis, *, block: int | None = None
) -> LatencyModel:
    """Calibrate the latency model of ``model`` (whose prepared graph and analysis are given).

    Args:
        model: the unpruned model (profiled once with onnxruntime).
        graph / analysis: its prepared, shape-inferred graph and channel analysis.
        block: conv channel block (None: :func:`host_block`).
    """
    block = block or host_block()
    convs, others = _describe(graph, analysis)
    samples, other_ms, total = [], 0.0, 0.0
    for op, ms, args in profile_nodes(model):
        total += ms
        features = _event_conv_features(args, block) if "Conv" in op else None
        if features is not None:
            samples.append((*features, ms))
        elif not op.startswith("Reorder"):  # layout changes around NCHWc convs: conv work
            other_ms += ms
    per_mac, per_out, per_conv = _fit_convs(samples)
    elements = sum(o.spatial * o.channels.fixed for o in others)
    per_element = other_ms / elements if elements else 0.0
    fitted = LatencyModel(convs, others, per_mac, per_out, per_conv, per_element, 0.0, block)
    fitted.rest = max(0.0, total - fitted.ms())
    log.info(
        "latency model: %.2f ms measured, %d conv(s), %.3g ms/GMAC, block %d",
        total,
        len(convs),
        per_mac * 1e9,
        block,
    )
    return fitted


def cached_latency_model(ctx: ScoreContext) -> LatencyModel:
    """The latency model of the plan's graph, calibrated once and kept in ``ctx.extras["_latency"]``
    (``ctx.extras["block"]`` overrides :func:`host_block`)."""
    if "_latency" not in ctx.extras:
        block = ctx.extras.get("block")
        ctx.extras["_latency"] = latency_model(
            to_model(ctx.graph), ctx.graph, ctx.analysis, block=int(block) if block else None
        )
    found: LatencyModel = ctx.extras["_latency"]
    return found
