"""Measuring a model before and after slimming: params, FLOPs, onnxruntime CPU latency, mAP.

Latency: every model gets its own onnxruntime CPU session (all graph optimisations, a fixed
thread count); after a warm-up the models are run *interleaved* (A, B, A, B, ...) on the
same random input, so background load hits them alike, and the median is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx

from edgesdk._lazy import require
from edgesdk.errors import GraphError
from edgesdk.graph.inspect import inspect_model
from edgesdk.graph.io import model_bytes
from edgesdk.recipe import Recipe


@dataclass
class ModelStats:
    """One model's numbers.

    Attributes:
        params: values in floating-point initializers.
        flops: 2 x MACs of Conv/Gemm/MatMul for one forward pass (``edgesdk inspect``).
        latency_ms: median onnxruntime CPU latency of one batch (None: not measured).
        map50 / map50_95: COCO mAP in [0, 1] on the ``--data`` folder (None: not measured).
    """

    params: int
    flops: int
    latency_ms: float | None = None
    map50: float | None = None
    map50_95: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data (latency rounded to 0.01 ms, mAP to 1e-4)."""
        data = asdict(self)
        for key, digits in (("latency_ms", 2), ("map50", 4), ("map50_95", 4)):
            if data[key] is not None:
                data[key] = round(data[key], digits)
        return data


def static_stats(model: onnx.ModelProto) -> ModelStats:
    """Params and FLOPs of ``model`` (no run)."""
    summary = inspect_model(model)
    return ModelStats(params=summary.params, flops=summary.flops)


def random_feed(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Uniform [0, 1) float32 data for every real input (static shapes required).

    Raises:
        GraphError: an input has a dynamic dimension.
    """
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    feed = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
        if any(d <= 0 for d in dims):
            raise GraphError(f"input {inp.name!r} has a dynamic shape {dims}; pin it (static-shape fix)")
        feed[inp.name] = rng.random(dims, dtype=np.float32)
    return feed


def latencies(
    models: Sequence[onnx.ModelProto],
    *,
    runs: int = 30,
    warmup: int = 3,
    threads: int = 1,
    statistic: Literal["median", "min"] = "median",
    clock: Literal["wall", "cpu"] = "wall",
) -> list[float]:
    """onnxruntime CPU latency (ms) of each model, measured interleaved.

    Args:
        models: models with the same inputs (e.g. before and after slimming).
        runs: timed runs per model.
        warmup: untimed runs per model first.
        threads: onnxruntime intra-op threads (1 gives the steadiest numbers on a shared host).
        statistic: ``median`` of the runs, or ``min`` (robust to background load on a busy host).
        clock: ``wall`` time, or the calling thread's ``cpu`` time (with one thread onnxruntime
            computes in the calling thread; time spent waiting for a core on a loaded host is
            then not counted).
    """
    ort = require("onnxruntime", feature="measuring latency", hint="pip install onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = [
        ort.InferenceSession(model_bytes(m), options, providers=["CPUExecutionProvider"]) for m in models
    ]
    feed = random_feed(models[0])
    for session in sessions:
        for _ in range(warmup):
            session.run(None, feed)
    times: list[list[float]] = [[] for _ in sessions]
    now = time.perf_counter if clock == "wall" else time.thread_time
    for _ in range(runs):
        for session, bucket in zip(sessions, times):
            start = now()
            session.run(None, feed)
            bucket.append((now() - start) * 1000.0)
    pick = statistics.median if statistic == "median" else min
    return [pick(bucket) for bucket in times]


def accuracy(
    recipe: Recipe, data: Path, model: onnx.ModelProto, *, limit: int | None = None, min_size: float = 0.0
) -> tuple[float, float]:
    """(mAP50, mAP50-95) of ``model`` with the recipe's pre/post-processing on a labelled folder.

    ``limit`` and ``min_size`` are :func:`edgesdk.eval.runner.evaluate`'s (first N images;
    ignore ground-truth boxes with a side below ``min_size`` px).

    Raises:
        ArtifactNotFound / DatasetError: see :func:`edgesdk.eval.runner.evaluate`.
    """
    from edgesdk.eval.runner import evaluate

    result = evaluate(recipe, data, limit=limit, min_size=min_size, model_override=model)
    return result.map50, result.map50_95
