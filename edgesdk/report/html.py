"""Benchmark reports as one self-contained HTML page (inline SVG charts, no scripts, no CDN)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone

from edgesdk import __version__
from edgesdk.report import svg
from edgesdk.report.model import Report, summary_row

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#111827;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.sub{color:#6b7280;margin-bottom:16px}
table{border-collapse:collapse;margin:8px 0 12px}td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:right}
th{background:#f9fafb}td:first-child,th:first-child{text-align:left}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#6b7280;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:8px}
svg .t{font-size:13px;font-weight:600;fill:#111827}svg .a{font-size:11px;fill:#4b5563}svg .l{font-size:11px;fill:#6b7280}
svg .g{stroke:#f3f4f6}svg .ax{stroke:#9ca3af}
.bad{color:#b91c1c}.good{color:#15803d}
"""


def _n(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return html.escape(str(value))


def _summary_table(reports: Sequence[Report]) -> str:
    head = ("run", "infer FPS", "e2e FPS", "e2e / infer", "frames", "dropped", "e2e p50 ms", "e2e p99 ms",
            "power mW", "mJ / inference")  # fmt: skip
    rows = []
    for report in reports:
        r = summary_row(report)
        ratio = r["e2e_over_infer"]
        cls = "" if ratio is None else (' class="good"' if ratio >= 0.9 else ' class="bad"')
        rows.append(
            f"<tr><td>{html.escape(r['run'])}</td><td>{_n(r['infer_fps'])}</td><td>{_n(r['e2e_fps'])}</td>"
            f"<td{cls}>{_n(ratio, 2)}</td><td>{_n(r['frames'])}</td><td>{_n(r['dropped'])}</td>"
            f"<td>{_n(r['e2e_p50_ms'])}</td><td>{_n(r['e2e_p99_ms'])}</td><td>{_n(r['power_mw'], 0)}</td>"
            f"<td>{_n(r['mj_per_inference'])}</td></tr>"
        )
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def _stage_table(report: Report) -> str:
    rows = []
    for name in report.stages:
        s = report.stage(name)
        cells = "".join(f"<td>{_n(s.get(k), 2)}</td>" for k in ("mean", "p50", "p90", "p95", "p99", "max"))
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("stage (ms)", "mean", "p50", "p90", "p95", "p99", "max"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _cards(report: Report) -> str:
    d = report.data
    items = [
        ("inference-only FPS", _n(d.get("infer_fps"))),
        ("end-to-end FPS", _n(d.get("e2e_fps"))),
        ("e2e / infer", _n(d.get("e2e_over_infer"), 2)),
        ("frames (dropped)", f"{_n(d.get('frames'))} ({_n(d.get('dropped'))})"),
    ]
    share = report.background_share
    if share is not None:
        items.append(("CPU used by other processes", f"{100 * share:.0f} %"))
    return (
        '<div class="cards">'
        + "".join(f"<div class=card><b>{v}</b><span>{k}</span></div>" for k, v in items)
        + "</div>"
    )


def _run_section(report: Report) -> str:
    d = report.data
    hists = d.get("latency_hist") or {}
    charts = [
        svg.histogram_chart(
            hists[name].get("edges", []), hists[name].get("counts", []), title=f"{name} latency"
        )
        for name in report.stages
        if name in hists
    ]
    fps = d.get("fps_over_time") or {}
    charts.append(svg.line_chart({"fps": (fps.get("t_s", []), fps.get("fps", []))}, title="end-to-end FPS over time",
                                 xlabel="s", ylabel="FPS"))  # fmt: skip
    power = d.get("power") or {}
    rails = power.get("rails_mw") or {}
    t = power.get("t_s") or []
    series = {name: (t, values) for name, values in rails.items()}
    if power.get("total_mw"):
        series["total"] = (t, power["total_mw"])
    charts.append(svg.line_chart(series, title="power over time", xlabel="s", ylabel="mW"))
    versions = d.get("versions") or {}
    vrows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                    for k, v in sorted(versions.items()) if not isinstance(v, (dict, list)))  # fmt: skip
    meta = (
        f"source {html.escape(str(d.get('source', '?')))} · input {html.escape(str(d.get('input_hw', '?')))}"
    )
    meta += f" · {html.escape(str(d.get('created', '')))}"
    note = report.busy_note()
    if note:
        meta += f"<br><b>note:</b> {html.escape(note)}"
    return (
        f"<h2>{html.escape(report.label)}</h2><div class=sub>{meta}</div>{_cards(report)}"
        f"{_stage_table(report)}<div class=grid>{''.join(charts)}</div>"
        + (f"<h3>versions</h3><table>{vrows}</table>" if vrows else "")
    )


def render_html(reports: Sequence[Report], *, title: str = "edgesdk benchmark") -> str:
    """The whole page: a comparison across runs, then one section per run."""
    labels = [r.label for r in reports]
    compare = svg.bar_chart(
        labels,
        {"inference only": [r.data.get("infer_fps") or 0.0 for r in reports],
         "end to end": [r.data.get("e2e_fps") or 0.0 for r in reports]},
        title="throughput", ylabel="FPS",
    )  # fmt: skip
    p99 = svg.bar_chart(
        labels,
        {stage: [r.stage(stage).get("p99") or 0.0 for r in reports] for stage in ("preprocess", "infer", "postprocess")},
        title="p99 latency per stage", ylabel="ms",
    )  # fmt: skip
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<div class=sub>{len(reports)} run(s) · edgesdk {__version__} · {now}</div>"
        f"{_summary_table(reports)}<div class=grid>{compare}{p99}</div>"
        + "".join(_run_section(r) for r in reports)
        + "</body></html>\n"
    )
