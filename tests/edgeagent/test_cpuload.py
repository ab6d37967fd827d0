"""Other processes' CPU share: the /proc/stat parser, and a real busy child process seen by it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from edgeagent.cpuload import CpuSnapshot, background_share, parse_proc_stat, snapshot

# The first lines of /proc/stat on a 2-core machine (user nice system idle iowait irq softirq steal ...).
PROC_STAT = """cpu  5109302 3787 232546 4383963 8616 0 1695 4932 0 0
cpu0 2627231 393 126481 2120591 1309 0 568 2564 0 0
cpu1 2482071 3394 106065 2263372 7306 0 1127 2367 0 0
intr 12345 0 0
"""


def test_parse_takes_the_aggregate_line() -> None:
    busy, total = parse_proc_stat(PROC_STAT)  # type: ignore[misc]
    assert busy == 5109302 + 3787 + 232546 + 0 + 1695 + 4932
    assert total == busy + 4383963 + 8616


@pytest.mark.parametrize("text", ["", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 three 4 5 6 7 8\n", "cpu 1 2 3\n"])
def test_parse_rejects_what_it_cannot_read(text: str) -> None:
    assert parse_proc_stat(text) is None


def test_share_arithmetic_and_missing_snapshots() -> None:
    start, end = CpuSnapshot(100.0, 400.0, 10.0), CpuSnapshot(103.0, 404.0, 11.0)
    assert background_share(start, end) == {"share": 0.5, "cpu_s": 2.0, "capacity_s": 4.0}
    assert background_share(None, end) is None and background_share(start, start) is None
    assert background_share(start, CpuSnapshot(101.0, 404.0, 12.0))["share"] == 0.0  # type: ignore[index]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux")
def test_a_busy_child_process_is_counted_and_our_own_work_is_not() -> None:
    # Lower bounds only: other work on the machine can add to "other", never take from it.
    start = snapshot()
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    subprocess.run([sys.executable, "-c", spin], check=True)  # another process: 0.6 CPU s
    middle = snapshot()
    t = time.process_time()
    while time.process_time() - t < 0.6:  # our own 0.6 CPU s
        pass
    end = snapshot()
    assert start is not None and middle is not None and end is not None
    child = background_share(start, middle)
    assert child is not None and child["cpu_s"] >= 0.5
    assert end.own_s - middle.own_s >= 0.55  # our own time is read (and subtracted from the busy time)
