"""Other processes' CPU share: the /proc/stat parser, and a real busy child process seen by it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from edgeagent.cpuload import CpuSnapshot, background_share, parse_proc_stat, process_cpu_ticks, snapshot

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
    assert background_share(start, end) == {
        "share": 0.5,
        "cpu_s": 2.0,
        "capacity_s": 4.0,
        "helpers_cpu_s": 0.0,
    }
    helped = background_share(start._replace(helpers_s=5.0), end._replace(helpers_s=6.5))
    assert helped is not None and helped["cpu_s"] == 0.5 and helped["helpers_cpu_s"] == 1.5
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


def test_process_cpu_ticks_reads_utime_and_stime_after_an_odd_name() -> None:
    line = "4242 (nvargus) daemon)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1000 0 0\n"
    assert process_cpu_ticks(line) == 325
    assert process_cpu_ticks("4242 (x) S 1") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_helper_processes_are_not_counted_as_other_work() -> None:
    # A child that names itself like a helper (as nvargus-daemon would be) and burns 0.6 CPU s.
    name = "edgesdk-helper"
    code = (
        f"open('/proc/self/comm', 'w').write({name!r})\n"
        "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)\n"
    )
    plain, helped = snapshot(helpers=frozenset()), snapshot(helpers=frozenset({name}))
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the child has spun (it then sleeps, still alive)
            end_helped = snapshot(helpers=frozenset({name}))
            if (
                end_helped is not None
                and helped is not None
                and end_helped.helpers_s - helped.helpers_s >= 0.6
            ):
                break
            time.sleep(0.1)
        end_plain = snapshot(helpers=frozenset())
    finally:
        child.kill()
        child.wait()
    with_helpers = background_share(helped, end_helped)
    without = background_share(plain, end_plain)
    assert with_helpers is not None and without is not None
    assert with_helpers["helpers_cpu_s"] >= 0.6
    assert without["cpu_s"] - with_helpers["cpu_s"] >= 0.5  # the helper's time left "other"
