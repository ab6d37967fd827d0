"""How much of the CPUs other processes used while a benchmark ran (Linux ``/proc/stat``).

A benchmark on a busy machine reads low and scattered (a desktop session, a second model, a
compile job): the report says so instead of leaving the user to guess. The share is the CPU
time all processes spent minus this process's own, over the CPU time available (cores x wall
time), both read from the kernel's counters at the start and the end of the run. Processes that
work *for* the run (:data:`HELPERS`: the Argus camera daemon behind ``csi://``, the tegrastats
sampler) are not counted as other work.
"""

from __future__ import annotations

import os
from typing import Any, Dict, FrozenSet, NamedTuple, Optional, Tuple

__all__ = ["HELPERS", "CpuSnapshot", "background_share", "parse_proc_stat", "process_cpu_ticks", "snapshot"]

HELPERS = frozenset({"nvargus-daemon", "tegrastats"})
"""Process names (``/proc/PID/comm``) whose CPU time serves the benchmark itself."""

BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
"""Indexes of the busy fields of the ``cpu`` line: user, nice, system, irq, softirq, steal (guest
time is already counted in user)."""
IDLE_FIELDS = (3, 4)
"""idle, iowait."""


class CpuSnapshot(NamedTuple):
    """Kernel CPU counters at one moment.

    Attributes:
        busy_s: CPU seconds spent busy on all cores since boot.
        total_s: CPU seconds (busy + idle) on all cores since boot.
        own_s: this process's user + system CPU seconds.
        helpers_s: user + system CPU seconds of the running :data:`HELPERS` processes.
    """

    busy_s: float
    total_s: float
    own_s: float
    helpers_s: float = 0.0


def parse_proc_stat(text: str) -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies from the aggregate ``cpu`` line of ``/proc/stat``, or None."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                values = [int(v) for v in fields[1:]]
            except ValueError:
                return None
            if len(values) < 8:
                return None
            busy = sum(values[i] for i in BUSY_FIELDS)
            return busy, busy + sum(values[i] for i in IDLE_FIELDS)
    return None


def process_cpu_ticks(stat_text: str) -> Optional[int]:
    """utime + stime (clock ticks) from a ``/proc/PID/stat`` line, or None when it does not parse."""
    fields = stat_text.rsplit(")", 1)[-1].split()  # the name in parentheses may hold spaces
    try:
        return int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


def _helper_ticks(proc: str, names: FrozenSet[str]) -> int:
    """CPU ticks of the processes whose ``comm`` is in ``names``."""
    total = 0
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(os.path.join(proc, pid, "comm")) as fh:
                if fh.read().strip() not in names:
                    continue
            with open(os.path.join(proc, pid, "stat")) as fh:
                total += process_cpu_ticks(fh.read()) or 0
        except OSError:  # the process ended meanwhile
            continue
    return total


def snapshot(proc: str = "/proc", helpers: FrozenSet[str] = HELPERS) -> Optional[CpuSnapshot]:
    """The counters now, or None where ``/proc/stat`` is missing or unreadable (not Linux)."""
    try:
        with open(os.path.join(proc, "stat")) as fh:
            parsed = parse_proc_stat(fh.read())
        hz = float(os.sysconf("SC_CLK_TCK"))
        helper_ticks = _helper_ticks(proc, helpers) if helpers else 0
    except (OSError, ValueError, AttributeError):
        return None
    if parsed is None or hz <= 0:
        return None
    times = os.times()
    return CpuSnapshot(parsed[0] / hz, parsed[1] / hz, times.user + times.system, helper_ticks / hz)


def background_share(start: Optional[CpuSnapshot], end: Optional[CpuSnapshot]) -> Optional[Dict[str, Any]]:
    """``{"share", "cpu_s", "capacity_s", "helpers_cpu_s"}``: the fraction of all CPU time used by
    other processes (not this one, not the :data:`HELPERS`), and the helpers' own CPU seconds.

    None when either snapshot is missing or no time passed.
    """
    if start is None or end is None:
        return None
    capacity = end.total_s - start.total_s
    if capacity <= 0:
        return None
    helpers = max(0.0, end.helpers_s - start.helpers_s)
    other = max(0.0, (end.busy_s - start.busy_s) - (end.own_s - start.own_s) - helpers)
    return {
        "share": min(1.0, other / capacity),
        "cpu_s": other,
        "capacity_s": capacity,
        "helpers_cpu_s": helpers,
    }
