"""Pipeline timing records: ring-buffered samples, percentiles, FPS, progress snapshots."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edgeagent.capture import Frame
from edgeagent.pipeline_stats import STAGES, PipelineStats, Samples, summarize


def test_summarize_matches_numpy_and_orders_percentiles() -> None:
    values = np.random.default_rng(1).gamma(2.0, 10.0, 1000)
    out = summarize(values)
    assert out["count"] == 1000 and out["mean"] == pytest.approx(values.mean())
    assert out["p90"] == pytest.approx(np.percentile(values, 90))
    ordered = [out[k] for k in ("min", "p50", "p90", "p95", "p99", "max")]
    assert ordered == sorted(ordered)  # type: ignore[type-var]


def test_summarize_empty_is_none() -> None:
    assert summarize([]) == {"count": 0.0, "min": None, "mean": None, "p50": None, "p90": None, "p95": None,
                             "p99": None, "max": None}  # fmt: skip


def test_samples_keep_the_last_capacity_but_count_everything() -> None:
    samples = Samples(capacity=4)
    for v in range(1, 11):
        samples.add(float(v))
    assert list(samples.values()) == [7.0, 8.0, 9.0, 10.0]
    out = samples.summary()
    assert (out["count"], out["min"], out["max"], out["mean"]) == (10.0, 1.0, 10.0, 5.5)
    assert out["p50"] == pytest.approx(8.5)  # percentiles over the retained window


def test_add_records_every_stage_and_end_to_end() -> None:
    stats = PipelineStats()
    stats.start()
    t = time.monotonic()
    for i in range(5):
        stats.frames_in += 1
        stats.add(Frame(i, np.zeros((1, 1, 3), np.uint8), t), {s: 1.0 + i for s in STAGES})
    assert stats.frames_out == 5
    assert [stats.samples[s].count for s in STAGES + ("e2e",)] == [5] * 6
    assert stats.samples["infer"].summary()["mean"] == 3.0
    assert stats.samples["e2e"].min >= 0.0
    stats.finish("end")
    summary = stats.summary()
    json.dumps(summary)
    assert summary["frames_out"] == 5 and summary["stop_reason"] == "end"
    assert set(summary["latency_ms"]) == set(STAGES) | {"e2e"}


def test_fps_and_series_from_output_times() -> None:
    stats = PipelineStats()
    stats.t_start = 100.0
    stats.per_second = [10, 12, 3]
    stats.t_last = 102.25  # the last bin is a quarter second long
    stats.frames_out = 25
    assert stats.wall_s == pytest.approx(2.25)
    assert stats.fps == pytest.approx(25 / 2.25)
    assert stats.fps_series() == {"t_s": [0.0, 1.0, 2.0], "fps": [10.0, 12.0, 12.0]}
    stats.t_last = 102.01  # a sliver of a bin: dropped instead of a 300 fps spike
    assert stats.fps_series()["fps"] == [10.0, 12.0]


def test_progress_reports_means_since_the_last_call() -> None:
    stats = PipelineStats()
    stats.start()
    now = time.monotonic()
    for ms in (2.0, 4.0):
        stats.add(Frame(0, np.zeros((1, 1, 3), np.uint8), now), {"infer": ms})
    first = stats.progress()
    assert first["stage_ms"] == {"infer": 3.0} and first["frames_out"] == 2 and not first["final"]
    stats.add(Frame(2, np.zeros((1, 1, 3), np.uint8), now), {"infer": 10.0})
    assert stats.progress()["stage_ms"] == {"infer": 10.0}
    stats.finish("duration")
    final = stats.progress(final=True)
    assert final["final"] and final["stop_reason"] == "duration" and final["stage_ms"] == {}
