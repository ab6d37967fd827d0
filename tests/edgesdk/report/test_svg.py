"""SVG chart helpers: axis ticks and bar geometry."""

from __future__ import annotations

import re

import pytest

from edgesdk.report.svg import MT, _nice_ticks, histogram_chart


@pytest.mark.parametrize("lo,hi", [(0, 33), (0, 30), (0, 1), (2.2, 6.7), (0, 0), (0, 98765)])
def test_ticks_cover_the_data_range(lo: float, hi: float) -> None:
    ticks = _nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) >= 2
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1  # evenly spaced


def test_the_tallest_bar_stays_below_the_title() -> None:
    svg = histogram_chart([0, 1, 2, 3], [5, 33, 7], title="capture latency")
    tops = [float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)"', svg)]
    assert min(tops) >= MT
