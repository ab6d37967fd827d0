"""Benchmark reports: load the agent's JSON, render Markdown and self-contained HTML."""

from edgesdk.report.html import render_html
from edgesdk.report.markdown import render_markdown
from edgesdk.report.model import Report, ReportError, check_report, load_report, summary_row

__all__ = [
    "Report",
    "ReportError",
    "check_report",
    "load_report",
    "render_html",
    "render_markdown",
    "summary_row",
]
