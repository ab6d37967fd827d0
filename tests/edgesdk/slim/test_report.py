"""Slim reports: ratios, JSON and the Markdown row the benchmark prints."""

from __future__ import annotations

from pathlib import Path

from edgesdk.slim.measure import ModelStats
from edgesdk.slim.plan import GroupPlan, SlimPlan
from edgesdk.slim.report import MARKDOWN_HEADER, SlimReport, markdown_row


def _plan() -> SlimPlan:
    group = GroupPlan(0, 4, ["conv"], ["next"], [0, 2])
    return SlimPlan("l1", "global", 0.3, 8, "sha", 1000, 600, [group])


def test_ratios_and_json() -> None:
    report = SlimReport(
        "m", _plan(), ModelStats(100, 1000, 10.0, 0.5), ModelStats(60, 600, 7.0, 0.45), Path("o")
    )
    assert report.ratios() == {"params": 0.6, "flops": 0.6, "latency": 0.7}
    data = report.to_json(groups=False)
    assert data["ratios"]["latency"] == 0.7 and "groups" not in data["plan"] and data["output"] == "o"
    assert data["plan"]["removed_flops"] == 0.4 and not data["dry_run"]


def test_dry_run_ratios() -> None:
    report = SlimReport("m", _plan(), ModelStats(100, 1000))
    assert report.dry_run and report.ratios() == {"params": None, "flops": 0.6, "latency": None}
    assert report.to_json()["plan"]["groups"][0]["removed"] == 2


def test_markdown_row() -> None:
    report = SlimReport(
        "m", _plan(), ModelStats(1_000_000, 2e9, 10.0, 0.5), ModelStats(600_000, 1.2e9, 6.5, 0.42)
    )
    row = markdown_row(report)
    assert row.count("|") == MARKDOWN_HEADER.splitlines()[0].count("|")
    assert "| 40.0% |" in row and "0.65" in row and "| 50.0 | 42.0 |" in row
