"""How much of the CPUs other processes used while a benchmark ran (Linux ``/proc/stat``).

A benchmark on a busy machine reads low and scattered (a desktop session, a second model, a
compile job): the report says so instead of leaving the user to guess. The share is the CPU
time all processes spent minus this process's own, over the CPU time available (cores x wall
time), both read from the kernel's counters at the start and the end of the run.
"""

from __future__ import annotations

import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

__all__ = ["CpuSnapshot", "background_share", "parse_proc_stat", "snapshot"]

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
    """

    busy_s: float
    total_s: float
    own_s: float


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


def snapshot(path: str = "/proc/stat") -> Optional[CpuSnapshot]:
    """The counters now, or None where ``/proc/stat`` is missing or unreadable (not Linux)."""
    try:
        with open(path) as fh:
            parsed = parse_proc_stat(fh.read())
        hz = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, AttributeError):
        return None
    if parsed is None or hz <= 0:
        return None
    times = os.times()
    return CpuSnapshot(parsed[0] / hz, parsed[1] / hz, times.user + times.system)


def background_share(start: Optional[CpuSnapshot], end: Optional[CpuSnapshot]) -> Optional[Dict[str, Any]]:
    """``{"share", "cpu_s", "capacity_s"}``: the fraction of all CPU time used by other processes.

    None when either snapshot is missing or no time passed.
    """
    if start is None or end is None:
        return None
    capacity = end.total_s - start.total_s
    if capacity <= 0:
        return None
    other = max(0.0, (end.busy_s - start.busy_s) - (end.own_s - start.own_s))
    return {"share": min(1.0, other / capacity), "cpu_s": other, "capacity_s": capacity}
