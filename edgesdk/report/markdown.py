"""Benchmark reports as Markdown (what the terminal shows after `edgesdk bench`)."""

from __future__ import annotations

from collections.abc import Sequence

from edgesdk.report.model import Report, summary_row


def _num(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(reports: Sequence[Report]) -> str:
    """A summary table across runs, then per-stage latency percentiles (ms) for each run."""
    lines = [
        "| run | infer FPS | e2e FPS | e2e/infer | frames | dropped | e2e p50 ms | e2e p99 ms | power mW | mJ/inference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        r = summary_row(report)
        lines.append(
            f"| {r['run']} | {_num(r['infer_fps'])} | {_num(r['e2e_fps'])} | {_num(r['e2e_over_infer'], 2)} | "
            f"{_num(r['frames'])} | {_num(r['dropped'])} | {_num(r['e2e_p50_ms'])} | {_num(r['e2e_p99_ms'])} | "
            f"{_num(r['power_mw'], 0)} | {_num(r['mj_per_inference'])} |"
        )
    notes = [note for note in (report.busy_note() for report in reports) if note]
    if notes:
        lines += [""] + [f"note: {note}" for note in notes]
    for report in reports:
        lines += ["", f"**{report.label}** — latency per stage (ms)", ""]
        lines.append("| stage | mean | p50 | p90 | p95 | p99 | max |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for name in report.stages:
            s = report.stage(name)
            lines.append(
                f"| {name} | {_num(s.get('mean'), 2)} | {_num(s.get('p50'), 2)} | {_num(s.get('p90'), 2)} | "
                f"{_num(s.get('p95'), 2)} | {_num(s.get('p99'), 2)} | {_num(s.get('max'), 2)} |"
            )
    return "\n".join(lines) + "\n"
