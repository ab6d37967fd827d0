"""Renderers on a real benchmark report: every stage and chart is there, numbers match the JSON."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgesdk.cli.app import app
from edgesdk.report import ReportError, check_report, load_report, render_html, render_markdown


def test_markdown_has_every_stage(real_report: dict[str, Any]) -> None:
    report = check_report(real_report, "real")
    text = render_markdown([report])
    for stage in ("capture", "preprocess", "infer", "postprocess", "e2e", "infer_only"):
        assert f"| {stage} |" in text
    assert f"{real_report['e2e_fps']:.1f}" in text
    assert report.label == "yunet / fp32 / ort"


def test_html_is_wellformed_with_charts(real_report: dict[str, Any]) -> None:
    other = copy.deepcopy(real_report)
    other["model"] = "yunet-slim"
    other["e2e_fps"] = real_report["e2e_fps"] * 2
    page = render_html([check_report(real_report, "a"), check_report(other, "b")])
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) >= 2 + 2 * 6  # comparison charts + per run: histograms, fps, power
    for chart in svgs:
        ET.fromstring(chart)  # each chart is valid XML
    assert "yunet-slim" in page and "no data" in page  # power: no INA3221 here
    bars = re.findall(r"<title>([^<]+): ([0-9.]+)</title>", page)
    values = {label: float(v) for label, v in bars}
    assert values  # the comparison bars carry their numbers


def test_a_disturbed_run_gets_a_note(real_report: dict[str, Any]) -> None:
    quiet, busy = copy.deepcopy(real_report), copy.deepcopy(real_report)
    quiet["background_cpu"] = {"share": 0.02, "cpu_s": 0.1, "capacity_s": 5.0}
    busy["background_cpu"] = {"share": 0.37, "cpu_s": 1.9, "capacity_s": 5.0}
    assert check_report(quiet, "q").busy_note() is None
    assert "other processes used" not in render_markdown([check_report(quiet, "q")])
    text = render_markdown([check_report(busy, "b")])
    assert "note: yunet / fp32 / ort: other processes used 37 % of the device's CPUs" in text
    page = render_html([check_report(busy, "b")])
    assert "CPU used by other processes" in page and "37 %" in page and "re-run on an idle device" in page
    del busy["background_cpu"]  # reports from before the key existed still render
    assert check_report(busy, "old").busy_note() is None


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="missing"):
        check_report({"model": "x"}, "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ReportError, match="not JSON"):
        load_report(bad)


def test_cli_report(real_report: dict[str, Any], tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps(real_report))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(a), str(a), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!doctype html>")
    result = CliRunner().invoke(app, ["report", str(a)])
    assert result.exit_code == 0 and "| infer |" in result.stdout
