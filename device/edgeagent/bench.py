"""Benchmark a model on this device: inference alone (like trtexec), then the whole camera pipeline.

:func:`bench` returns a JSON-able report; the host renders it (Markdown, HTML with plots) and
compares reports. Top-level keys: ``infer_fps``, ``e2e_fps``, ``e2e_over_infer``, ``frames``,
``frames_in``, ``dropped``, ``latency_ms.<stage>.{count,min,mean,p50,p90,p95,p99,max}`` for the
pipeline stages (capture, preprocess, infer, postprocess, sink), ``e2e`` (capture -> sinks done)
and ``infer_only`` (the engine alone), ``latency_hist`` (per-stage histograms), ``fps_over_time``,
``power``, ``temperatures``, ``clocks``, ``versions``, and ``background_cpu`` (the share of the
CPUs other processes used during the run, or null off Linux; see :mod:`edgeagent.cpuload`).
"""

from __future__ import annotations

import datetime
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from edgeagent.backends.base import Backend
from edgeagent.capture import Source
from edgeagent.cpuload import background_share, snapshot
from edgeagent.events import BadInput
from edgeagent.pipeline import Pipeline, StatsCallback, model_params
from edgeagent.pipeline_stats import summarize
from edgeagent.sinks import Sink
from edgeagent.telemetry import TelemetrySampler, read_power_config
from edgeagent.vision.preprocess import preprocess

REPORT_FORMAT = 1
HIST_BINS = 30


def fixed_input(backend: Backend, params: Any, seed: int = 0) -> Dict[str, np.ndarray]:
    """A feed for the engine alone: a seeded noise 1280x720 frame through the model's pre-processing.

    Args:
        backend: an active backend.
        params: model parameters (see :func:`edgeagent.pipeline.model_params`).
        seed: the noise seed (same seed, same input).

    Returns:
        input name -> (1, C, H, W) float32.
    """
    p = model_params(params)
    frame = np.random.default_rng(seed).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    tensor, _ = preprocess(frame, p.input_hw, p.preprocess)
    name = p.input_name or backend.inputs[0].name
    return {name: tensor[None]}


def time_inference(
    backend: Backend,
    feed: Dict[str, np.ndarray],
    *,
    iterations: Optional[int] = None,
    duration: Optional[float] = None,
) -> Tuple[np.ndarray, float]:
    """Run the engine back to back on one feed.

    Args:
        backend: an active backend.
        feed: input name -> array.
        iterations: how many runs (default 100 when no duration is given).
        duration: run for this many seconds instead (at least one run).

    Returns:
        (per-run latencies in ms, wall seconds of the whole loop).
    """
    if iterations is None and duration is None:
        iterations = 100
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        backend.infer(feed)
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1000.0)
        if iterations is not None and len(times) >= iterations:
            break
        if duration is not None and t1 - start >= duration:
            break
    return np.asarray(times, np.float64), time.perf_counter() - start


def histogram(values_ms: Any, bins: int = HIST_BINS) -> Dict[str, Any]:
    """``{"edges": [bins + 1 ms], "counts": [bins]}`` over [min, max] (empty lists without samples)."""
    values = np.asarray(values_ms, np.float64).reshape(-1)
    if values.size == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi if hi > lo else lo + 1e-3))
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def bench(
    backend: Backend,
    params: Any,
    source: Source,
    *,
    warmup: int = 10,
    frames: Optional[int] = None,
    duration: Optional[float] = None,
    telemetry: Optional[TelemetrySampler] = None,
    sinks: Sequence[Sink] = (),
    queue_size: Optional[int] = None,
    infer_iterations: Optional[int] = None,
    versions: Optional[Dict[str, Any]] = None,
    on_stats: Optional[StatsCallback] = None,
) -> Dict[str, Any]:
    """Warm up, time the engine alone, then run the pipeline on ``source``; return the report.

    Args:
        backend: the backend (activated here when needed).
        params: model parameters (manifest, resolved recipe or :class:`~edgeagent.pipeline.ModelParams`).
        source: the source for the end-to-end part (read to its end when frames and duration are None).
        warmup: engine runs before any timing.
        frames: end-to-end: stop after this many frames.
        duration: end-to-end: stop after this many seconds.
        telemetry: a sampler (started and stopped here); None or unavailable: power etc. are null.
        sinks: sinks for the end-to-end part (e.g. a video file, MJPEG).
        queue_size: the pipeline's queue size (default: 1 for live sources, 2 for files).
        infer_iterations: engine-alone runs (default: ``frames``, else ``duration`` seconds, else 200).
        versions: passed through into the report (e.g. from ``edgeagent info``).
        on_stats: the pipeline's progress callback.

    Returns:
        The report (JSON-able; see the module docstring).

    Raises:
        BadInput: a live source without frames or duration, or a negative count.
        PipelineError: a pipeline stage failed.
    """
    if source.live and frames is None and duration is None:
        raise BadInput(f"{source.uri} is live: give frames or duration", "e.g. --duration 30")
    if (
        warmup < 0
        or (frames is not None and frames < 1)
        or (infer_iterations is not None and infer_iterations < 1)
    ):
        raise BadInput("warmup must be >= 0, frames and infer_iterations >= 1")
    p = model_params(params)
    backend.activate()
    sampler = telemetry.start() if telemetry is not None else None
    config = (
        read_power_config()
        if sampler is not None and sampler.available
        else {"nvpmodel": None, "jetson_clocks": None}
    )
    t_ref = time.monotonic()
    cpu_start = snapshot()
    try:
        feed = fixed_input(backend, p)
        if warmup:
            time_inference(backend, feed, iterations=warmup)
        if infer_iterations is None and frames is None and duration is not None:
            infer_times, infer_wall = time_inference(backend, feed, duration=duration)
        else:
            infer_times, infer_wall = time_inference(
                backend, feed, iterations=infer_iterations or frames or 200
            )
        t_infer = (t_ref, time.monotonic())
        pipeline = Pipeline(source, backend, p, sinks, queue_size=queue_size, on_stats=on_stats)
        stats = pipeline.run(max_frames=frames, duration=duration)
        t_e2e = (stats.t_start, stats.t_last)
        background = background_share(cpu_start, snapshot())
    finally:
        if sampler is not None:
            sampler.stop()
    infer_fps = infer_times.size / infer_wall if infer_wall > 0 else 0.0
    latency = {name: s.summary() for name, s in stats.samples.items()}
    latency["infer_only"] = summarize(infer_times)
    hist = {name: histogram(s.values()) for name, s in stats.samples.items()}
    hist["infer_only"] = histogram(infer_times)
    report: Dict[str, Any] = {
        "report_format": REPORT_FORMAT,
        "kind": "bench",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": p.name,
        "backend": backend.name,
        "input_hw": list(p.input_hw),
        "source": source.uri,
        "source_live": source.live,
        "settings": {
            "warmup": warmup,
            "frames": frames,
            "duration": duration,
            "queue_size": pipeline.queue_size,
            "infer_iterations": int(infer_times.size),
        },  # fmt: skip
        "infer_fps": infer_fps,
        "e2e_fps": stats.fps,
        "e2e_over_infer": stats.fps / infer_fps if infer_fps > 0 else None,
        "frames": stats.frames_out,
        "frames_in": stats.frames_in,
        "dropped": stats.dropped,
        "stop_reason": stats.stop_reason,
        "wall_s": {"infer_only": infer_wall, "e2e": stats.wall_s},
        "latency_ms": latency,
        "latency_hist": hist,
        "fps_over_time": stats.fps_series(),
        "background_cpu": background,
    }
    report.update(_telemetry(sampler, t_ref, {"infer": t_infer, "e2e": t_e2e}, infer_fps, stats.fps))
    report["clocks"].update(config)
    report["versions"] = dict(versions or {})
    return report


def _telemetry(
    sampler: Optional[TelemetrySampler],
    t_ref: float,
    phases: Dict[str, Tuple[float, float]],
    infer_fps: float,
    e2e_fps: float,
) -> Dict[str, Any]:
    """``power``, ``temperatures`` and ``clocks`` sections (null values without telemetry)."""
    if sampler is None or not sampler.available:
        power: Dict[str, Any] = {"available": False, "t_s": [], "rails_mw": {}, "total_mw": [], "mean_mw": {},
                                 "total_source": None, "phase_mean_mw": {k: None for k in phases}}  # fmt: skip
        thermal: Dict[str, Any] = {"temperatures_c": {}}
    else:
        power = sampler.power_summary(t_ref, phases)
        thermal = sampler.thermal_summary(*phases["e2e"])
    means = power["phase_mean_mw"]
    # mW / (1/s) = mJ: mean module power while the engine ran alone, per inference; same for a frame.
    power["energy_per_inference_mj"] = (
        means["infer"] / infer_fps if means.get("infer") and infer_fps else None
    )
    power["energy_per_frame_mj"] = means["e2e"] / e2e_fps if means.get("e2e") and e2e_fps else None
    clocks = {k: thermal.get(k) for k in ("gpu_load", "gpu_freq_mhz", "emc_freq_mhz", "cpu_freq_mhz")}
    return {"power": power, "temperatures": thermal["temperatures_c"], "clocks": clocks}
