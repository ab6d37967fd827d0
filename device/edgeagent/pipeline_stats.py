"""Timing records for :mod:`edgeagent.pipeline`: per-stage samples, throughput, FPS over time.

Memory stays flat on long runs: each stage keeps its last ``capacity`` samples in a ring buffer
(percentiles come from those), while count, mean, min and max cover every sample.
"""

from __future__ import annotations

import collections
import time
from typing import Any, Deque, Dict, List, Mapping, Optional

import numpy as np

from edgeagent.capture import Frame

#: Pipeline stages in order; ``e2e`` (capture returned -> sinks done) is recorded beside them.
STAGES = ("capture", "preprocess", "infer", "postprocess", "sink")
PERCENTILES = (50, 90, 95, 99)


def summarize(values_ms: Any) -> Dict[str, Optional[float]]:
    """``count, min, mean, p50, p90, p95, p99, max`` of millisecond samples (None when empty).

    Percentiles use linear interpolation (numpy's default), so p50 <= p90 <= p95 <= p99 always.
    """
    values = np.asarray(values_ms, np.float64).reshape(-1)
    out: Dict[str, Optional[float]] = {"count": float(values.size)}
    if values.size == 0:
        out.update({k: None for k in ("min", "mean", "p50", "p90", "p95", "p99", "max")})
        return out
    pct = np.percentile(values, PERCENTILES)
    out.update({"min": float(values.min()), "mean": float(values.mean())})
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, pct)})
    out["max"] = float(values.max())
    return out


class Samples:
    """Millisecond samples of one stage (written by one thread).

    Args:
        capacity: samples kept for percentiles (older ones are overwritten).
    """

    def __init__(self, capacity: int = 65536) -> None:
        self._buf = np.zeros(max(1, int(capacity)), np.float64)
        self.count = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value_ms: float) -> None:
        self._buf[self.count % self._buf.size] = value_ms
        self.count += 1
        self.total += value_ms
        self.min = min(self.min, value_ms)
        self.max = max(self.max, value_ms)

    def __len__(self) -> int:
        return self.count

    def values(self) -> np.ndarray:
        """The retained samples in the order they were added."""
        n, size = self.count, self._buf.size
        if n <= size:
            return self._buf[:n].copy()
        start = n % size
        return np.concatenate([self._buf[start:], self._buf[:start]])

    def summary(self) -> Dict[str, Optional[float]]:
        """Like :func:`summarize`, with count/mean/min/max over every sample ever added."""
        out = summarize(self.values())
        if self.count:
            out.update(count=float(self.count), mean=self.total / self.count, min=self.min, max=self.max)
        return out


class PipelineStats:
    """Counters and timings of one pipeline run (times are ``time.monotonic()`` seconds).

    Attributes:
        frames_in: frames read from the source.
        frames_out: frames through every sink.
        dropped: frames dropped (live sources only: the oldest frame when the pipeline fell behind).
        samples: stage name (and ``e2e``) -> :class:`Samples` in milliseconds.
        stop_reason: ``end``, ``max_frames``, ``duration``, ``interrupted``, ``stopped`` or ``error``.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self.samples: Dict[str, Samples] = {name: Samples(capacity) for name in STAGES + ("e2e",)}
        self.t_start = time.monotonic()
        self.t_last = self.t_start
        self.t_end: Optional[float] = None
        self.stop_reason = ""
        self.per_second: List[int] = []
        self._recent: Deque[float] = collections.deque(maxlen=30)
        self._interval: Dict[str, float] = {}
        self._interval_n = 0
        self._last_progress = self.t_start

    def start(self) -> None:
        self.t_start = self.t_last = self._last_progress = time.monotonic()

    def finish(self, reason: str) -> None:
        self.t_end = time.monotonic()
        self.stop_reason = reason

    def add(self, frame: Frame, ms: Mapping[str, float]) -> None:
        """Record a frame that went through every sink (called by the sink thread)."""
        now = time.monotonic()
        e2e = (now - frame.t_capture) * 1000.0
        for name, value in ms.items():
            self.samples[name].add(value)
            self._interval[name] = self._interval.get(name, 0.0) + value
        self.samples["e2e"].add(e2e)
        self._interval["e2e"] = self._interval.get("e2e", 0.0) + e2e
        self._interval_n += 1
        self.frames_out += 1
        self.t_last = now
        self._recent.append(now)
        second = int(now - self.t_start)
        if second >= len(self.per_second):
            self.per_second.extend([0] * (second + 1 - len(self.per_second)))
        self.per_second[second] += 1

    def rolling_fps(self) -> Optional[float]:
        """Output FPS over the last (up to) 30 frames, or None before two frames."""
        if len(self._recent) < 2 or self._recent[-1] <= self._recent[0]:
            return None
        return (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])

    @property
    def wall_s(self) -> float:
        """Seconds from the start to the last frame out."""
        return max(0.0, self.t_last - self.t_start)

    @property
    def fps(self) -> float:
        """Average output frames per second over :attr:`wall_s` (0 when nothing came out)."""
        return self.frames_out / self.wall_s if self.frames_out and self.wall_s > 0 else 0.0

    def frame_stats(self, frame: Frame, ms: Mapping[str, float], detections: int) -> Dict[str, Any]:
        """The per-frame dict sinks receive (JSON-able)."""
        return {
            "index": int(frame.index),
            "fps": self.rolling_fps(),
            "stage_ms": {k: round(v, 3) for k, v in ms.items()},
            "latency_ms": round((time.monotonic() - frame.t_capture) * 1000.0, 3),
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "detections": int(detections),
        }

    def progress_due(self, interval: float) -> bool:
        return time.monotonic() - self._last_progress >= interval

    def progress(self, final: bool = False) -> Dict[str, Any]:
        """A JSON-able snapshot: counters, rolling FPS and the mean ms per stage since the last call."""
        n = max(1, self._interval_n)
        means = {k: round(v / n, 3) for k, v in self._interval.items()} if self._interval_n else {}
        self._interval, self._interval_n, self._last_progress = {}, 0, time.monotonic()
        out: Dict[str, Any] = {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "fps": self.rolling_fps(),
            "fps_avg": round(self.fps, 3),
            "elapsed_s": round(time.monotonic() - self.t_start, 3),
            "stage_ms": {k: v for k, v in means.items() if k != "e2e"},
            "latency_ms": means.get("e2e"),
            "final": final,
        }
        if final:
            out["stop_reason"] = self.stop_reason
        return out

    def fps_series(self) -> Dict[str, List[float]]:
        """Output FPS per wall-clock second: ``{"t_s": [bin start…], "fps": […]}`` (last bin: its true length)."""
        fps = [float(c) for c in self.per_second]
        if len(fps) > 1:
            tail = self.wall_s - (len(fps) - 1)  # the last bin is partial: [0, 1) s long
            if tail > 0.05:
                fps[-1] = fps[-1] / tail
            else:
                fps.pop()  # a sliver: its rate would be meaningless
        return {"t_s": [float(i) for i in range(len(fps))], "fps": [round(v, 3) for v in fps]}

    def summary(self) -> Dict[str, Any]:
        """JSON-able totals: counters, FPS, wall time, stop reason, latency per stage and e2e (ms)."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "fps": self.fps,
            "wall_s": self.wall_s,
            "stop_reason": self.stop_reason,
            "latency_ms": {name: s.summary() for name, s in self.samples.items()},
        }
