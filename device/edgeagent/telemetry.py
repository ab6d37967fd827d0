"""Jetson telemetry during a run: tegrastats in a thread, power/clock configuration, summaries.

On a machine without ``tegrastats`` (not a Jetson) :class:`TelemetrySampler` is a no-op whose
summaries report None: callers never need to branch. The parsers live in
:mod:`edgeagent.telemetry_parsers` and are re-exported here.
"""

from __future__ import annotations

import collections
import logging
import shutil
import subprocess
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from edgeagent.telemetry_parsers import (
    TOTAL_RAILS,
    parse_jetson_clocks,
    parse_nvpmodel,
    parse_tegrastats,
    read_ina3221,
    total_power,
)

log = logging.getLogger(__name__)

__all__ = [
    "TOTAL_RAILS",
    "TelemetrySampler",
    "ina3221_sample",
    "parse_jetson_clocks",
    "parse_nvpmodel",
    "parse_tegrastats",
    "read_ina3221",
    "read_power_config",
    "total_power",
]

Sample = Tuple[float, Dict[str, Any]]  # (time.monotonic() s, parse_tegrastats(...))


def _run(argv: Sequence[str], timeout: float = 5.0) -> Optional[str]:
    """stdout of a command, or None when it is missing, fails or times out."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def read_power_config() -> Dict[str, Any]:
    """The power mode (``nvpmodel -q``) and clock state (``jetson_clocks --show``) when readable.

    ``jetson_clocks --show`` needs root; as a normal user its entry is None.

    Returns:
        ``{"nvpmodel": parse_nvpmodel(...) | None, "jetson_clocks": parse_jetson_clocks(...) | None}``.
    """
    nvp = _run(["nvpmodel", "-q"])
    clocks = _run(["jetson_clocks", "--show"])
    return {
        "nvpmodel": parse_nvpmodel(nvp) if nvp else None,
        "jetson_clocks": parse_jetson_clocks(clocks) if clocks else None,
    }


def ina3221_sample(reading: Dict[str, Any]) -> Dict[str, Any]:
    """A :func:`read_ina3221` reading in the shape of a parsed tegrastats line (power parts only)."""
    rails = {
        name: {"current": r["power_mw"], "average": r["power_mw"]} for name, r in reading["rails"].items()
    }
    total = {
        "current": reading["total_mw"],
        "average": reading["total_mw"],
        "source": reading["total_source"],
    }
    return {
        "power_mw": rails,
        "power_total_mw": total,
        "temperatures_c": {},
        "cpus": [],
        "gpu": None,
        "emc": None,
    }


class TelemetrySampler:
    """Sample telemetry in a thread: ``tegrastats --interval <ms>``, else the INA3221 rails in sysfs.

    Args:
        interval: seconds between samples.
        command: the command to run instead of tegrastats (argv list). None: tegrastats when it is on
            PATH; else, when ``sysfs_root`` has INA3221 monitors (e.g. a container without
            tegrastats), their power is polled; else nothing (``available`` is False and every
            summary is empty/None).
        max_samples: samples kept (oldest dropped first; memory stays flat).
        sysfs_root: the folder holding ``sys/`` for the INA3221 fallback.
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        command: Optional[Sequence[str]] = None,
        max_samples: int = 36000,
        sysfs_root: str = "/",
    ) -> None:
        self.interval = float(interval)
        if command is None and shutil.which("tegrastats"):
            command = ["tegrastats", "--interval", str(max(1, int(round(self.interval * 1000))))]
        self.command: Optional[List[str]] = list(command) if command else None
        self.sysfs_root = sysfs_root
        self._ina = self.command is None and read_ina3221(sysfs_root) is not None
        self._samples: Deque[Sample] = collections.deque(maxlen=max_samples)
        self._proc: Optional[subprocess.Popen[str]] = None
        self._thread: Optional[threading.Thread] = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """True when there is something to sample (tegrastats, an explicit command, or INA3221 rails)."""
        return self.command is not None or self._ina

    @property
    def mode(self) -> Optional[str]:
        """``tegrastats`` (or the explicit command), ``ina3221``, or None."""
        return "tegrastats" if self.command is not None else ("ina3221" if self._ina else None)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> TelemetrySampler:
        """Start sampling (no-op when unavailable or already running)."""
        if not self.available or self.running:
            return self
        self._halt.clear()
        if self.command is None:
            self._thread = threading.Thread(target=self._poll_ina3221, name="telemetry", daemon=True)
            self._thread.start()
            return self
        try:
            self._proc = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
            )
        except OSError as err:
            log.warning("telemetry: cannot run %s: %s", self.command[0], err)
            self.command = None
            return self
        self._thread = threading.Thread(target=self._read, args=(self._proc,), name="telemetry", daemon=True)
        self._thread.start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line:
                sample = (time.monotonic(), parse_tegrastats(line))
                with self._lock:
                    self._samples.append(sample)

    def _poll_ina3221(self) -> None:
        while not self._halt.is_set():
            reading = read_ina3221(self.sysfs_root)
            if reading is not None:
                with self._lock:
                    self._samples.append((time.monotonic(), ina3221_sample(reading)))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        """Stop the tegrastats process and the reader thread (safe to call twice)."""
        self._halt.set()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    def __enter__(self) -> TelemetrySampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def samples(self, t0: Optional[float] = None, t1: Optional[float] = None) -> List[Sample]:
        """Samples with ``t0 <= t <= t1`` (monotonic seconds; None: unbounded)."""
        with self._lock:
            items = list(self._samples)
        return [(t, s) for t, s in items if (t0 is None or t >= t0) and (t1 is None or t <= t1)]

    def latest(self) -> Optional[Dict[str, Any]]:
        """The newest parsed sample, or None."""
        with self._lock:
            return self._samples[-1][1] if self._samples else None

    def power_summary(self, t_ref: float, phases: Dict[str, Tuple[float, float]]) -> Dict[str, Any]:
        """Power series and per-phase means (see :func:`power_summary`)."""
        return power_summary(self.samples(), t_ref, phases)

    def thermal_summary(self, t0: Optional[float] = None, t1: Optional[float] = None) -> Dict[str, Any]:
        """Temperatures and clocks between t0 and t1 (see :func:`thermal_summary`)."""
        return thermal_summary(self.samples(t0, t1))


def _mean(values: List[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def power_summary(
    samples: List[Sample], t_ref: float, phases: Dict[str, Tuple[float, float]]
) -> Dict[str, Any]:
    """Per-rail power series and means.

    Args:
        samples: (monotonic s, parsed tegrastats line) pairs.
        t_ref: time zero of the series (monotonic s).
        phases: name -> (t0, t1) monotonic windows to average over (e.g. ``infer``, ``e2e``).

    Returns:
        ``available`` (bool); ``t_s`` (s since t_ref); ``rails_mw`` rail -> series (instantaneous mW);
        ``total_mw`` series; ``total_source`` (``VDD_IN``, ``POM_5V_IN`` or ``sum``);
        ``mean_mw`` rail -> mean over all samples; ``phase_mean_mw`` phase -> mean total mW (None
        without samples in the window).
    """
    with_power = [(t, s) for t, s in samples if s.get("power_mw")]
    if not with_power:
        return {"available": False, "t_s": [], "rails_mw": {}, "total_mw": [], "total_source": None,
                "mean_mw": {}, "phase_mean_mw": {name: None for name in phases}}  # fmt: skip
    rails: Dict[str, List[Optional[float]]] = {}
    for i, (_, s) in enumerate(with_power):
        for name, value in s["power_mw"].items():
            rails.setdefault(name, [None] * len(with_power))[i] = float(value["current"])
    totals = [s["power_total_mw"]["current"] for _, s in with_power]
    times = [t for t, _ in with_power]
    phase_means = {
        name: _mean([p for t, p in zip(times, totals) if a <= t <= b]) for name, (a, b) in phases.items()
    }
    return {
        "available": True,
        "t_s": [round(t - t_ref, 3) for t in times],
        "rails_mw": rails,
        "total_mw": totals,
        "total_source": with_power[-1][1]["power_total_mw"]["source"],
        "mean_mw": {name: _mean([v for v in series if v is not None]) for name, series in rails.items()},
        "phase_mean_mw": phase_means,
    }


def thermal_summary(samples: List[Sample]) -> Dict[str, Any]:
    """Temperature (deg C) and clock (MHz) mean/max over samples.

    Returns:
        ``temperatures_c``: sensor -> {mean, max} (powered-down sensors left out); ``gpu_load``,
        ``gpu_freq_mhz``, ``emc_freq_mhz``, ``cpu_freq_mhz`` (mean over online cores): {mean, max}
        or None without samples.
    """
    temps: Dict[str, List[float]] = {}
    series: Dict[str, List[float]] = {
        "gpu_load": [],
        "gpu_freq_mhz": [],
        "emc_freq_mhz": [],
        "cpu_freq_mhz": [],
    }
    for _, s in samples:
        for name, value in (s.get("temperatures_c") or {}).items():
            if value is not None:
                temps.setdefault(name, []).append(float(value))
        gpu, emc = s.get("gpu") or {}, s.get("emc") or {}
        for key, value in (("gpu_load", gpu.get("load")), ("gpu_freq_mhz", gpu.get("freq_mhz")),
                           ("emc_freq_mhz", emc.get("freq_mhz"))):  # fmt: skip
            if value is not None:
                series[key].append(float(value))
        cpu = [c["freq_mhz"] for c in s.get("cpus") or [] if c and c.get("freq_mhz") is not None]
        if cpu:
            series["cpu_freq_mhz"].append(sum(cpu) / len(cpu))
    out: Dict[str, Any] = {
        "temperatures_c": {k: {"mean": _mean(v), "max": max(v)} for k, v in temps.items()},
    }
    for key, values in series.items():
        out[key] = {"mean": _mean(values), "max": max(values)} if values else None
    return out
