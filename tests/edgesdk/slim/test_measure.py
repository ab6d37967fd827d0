"""Measurements: static stats, interleaved latency, random feeds."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgesdk.errors import GraphError
from edgesdk.slim.measure import ModelStats, latencies, random_feed, static_stats


def _model(dims: list) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_latency_of_a_bigger_model_is_higher(exported, kit) -> None:
    model = exported("yolo-fastest")
    _, analysis = kit.analysis_of(model)
    small = kit.prune(model, {g.id: [0] for g in analysis.prunable()})
    big_ms, small_ms = latencies([model, small], runs=15, warmup=2)  # medians of interleaved runs
    assert 0 < small_ms < big_ms
    # min vs median of separate calls is a race on a shared host; compare within one call
    fastest, small_fastest = latencies([model, small], runs=5, warmup=1, statistic="min")
    assert 0 < small_fastest < fastest


def test_static_stats_and_json(exported) -> None:
    stats = static_stats(exported("yolo-fastest"))
    assert stats.flops == 250875200 and stats.params == 326170 and stats.latency_ms is None
    assert ModelStats(1, 2, 3.14159, 0.123456).to_json() == {
        "params": 1, "flops": 2, "latency_ms": 3.14, "map50": 0.1235, "map50_95": None,
    }  # fmt: skip


def test_random_feed_needs_static_shapes() -> None:
    feed = random_feed(_model([1, 3, 4, 4]))
    assert feed["x"].shape == (1, 3, 4, 4) and feed["x"].dtype == np.float32
    with pytest.raises(GraphError, match="dynamic shape"):
        random_feed(_model(["batch", 3, 4, 4]))


def test_cpu_clock_counts_the_work_not_the_wait() -> None:
    import time

    big, small = _model([1, 64, 256, 256]), _model([1, 4, 16, 16])
    cpu_big, cpu_small = (
        latencies([m], runs=5, warmup=1, statistic="min", clock="cpu")[0] for m in (big, small)
    )
    assert 0 < cpu_small < cpu_big
    started = time.thread_time()
    time.sleep(0.05)  # waiting costs the thread no CPU time
    assert time.thread_time() - started < 0.02
