"""Small, dependency-free SVG charts for the HTML report (no matplotlib on the host needed).

Every function returns one ``<svg>`` element as a string; sizes are in CSS pixels.
Text is escaped; numbers are formatted with at most 4 significant digits.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
W, H = 560, 260
ML, MR, MT, MB = 56, 16, 28, 40  # margins: left, right, top, bottom


def fmt(value: float) -> str:
    """A short human number: 4 significant digits, no exponent for everyday magnitudes."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    return f"{value:.4g}"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - step * 1e-9:  # the last tick covers hi: bars never rise above the axis
        ticks.append(round(start + len(ticks) * step, 10))
    return ticks


def _frame(title: str, xlabel: str, ylabel: str, xt: list[float], yt: list[float], sx, sy) -> list[str]:  # type: ignore[no-untyped-def]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{W / 2}" y="16" text-anchor="middle" class="t">{html.escape(title)}</text>',
    ]
    for y in yt:
        py = sy(y)
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{py:.1f}" y2="{py:.1f}" class="g"/>')
        out.append(f'<text x="{ML - 6}" y="{py + 4:.1f}" text-anchor="end" class="a">{fmt(y)}</text>')
    for x in xt:
        px = sx(x)
        out.append(f'<text x="{px:.1f}" y="{H - MB + 16}" text-anchor="middle" class="a">{fmt(x)}</text>')
    out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{H - MB}" y2="{H - MB}" class="ax"/>')
    out.append(
        f'<text x="{(ML + W - MR) / 2}" y="{H - 6}" text-anchor="middle" class="l">{html.escape(xlabel)}</text>'
    )
    out.append(
        f'<text x="14" y="{(MT + H - MB) / 2}" text-anchor="middle" class="l" '
        f'transform="rotate(-90 14 {(MT + H - MB) / 2})">{html.escape(ylabel)}</text>'
    )
    return out


def _scales(xlo: float, xhi: float, ylo: float, yhi: float):  # type: ignore[no-untyped-def]
    xt, yt = _nice_ticks(xlo, xhi), _nice_ticks(ylo, yhi)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(x: float) -> float:
        return ML + (x - x0) / ((x1 - x0) or 1) * (W - ML - MR)

    def sy(y: float) -> float:
        return H - MB - (y - y0) / ((y1 - y0) or 1) * (H - MT - MB)

    return xt, yt, sx, sy


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = ML + 8 + (i % 3) * 160
        y = MT + 4 + (i // 3) * 14
        out.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 1}" class="a">{html.escape(name[:26])}</text>')
    return out


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str, xlabel: str, ylabel: str
) -> str:
    """Lines, one per series name: ``{name: (xs, ys)}``. Empty input gives a "no data" chart."""
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys)]
    if not points:
        return empty_chart(title)
    xs_all = [p[0] for p in points]
    ys_all = [p[1] for p in points]
    xt, yt, sx, sy = _scales(min(xs_all), max(xs_all), min(0.0, min(ys_all)), max(ys_all))
    out = _frame(title, xlabel, ylabel, xt, yt, sx, sy)
    for i, (xs, ys) in enumerate(series.values()):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys))
        out.append(
            f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="2" points="{path}"/>'
        )
    if len(series) > 1:
        out += _legend(list(series))
    out.append("</svg>")
    return "\n".join(out)


def histogram_chart(edges: Sequence[float], counts: Sequence[int], *, title: str, xlabel: str = "ms") -> str:
    """Bars over ``edges`` (len(counts) + 1 values)."""
    if len(counts) == 0 or len(edges) != len(counts) + 1:
        return empty_chart(title)
    xt, yt, sx, sy = _scales(edges[0], edges[-1], 0.0, max(max(counts), 1))
    out = _frame(title, xlabel, "frames", xt, yt, sx, sy)
    for lo, hi, count in zip(edges[:-1], edges[1:], counts):
        x, width = sx(lo), max(sx(hi) - sx(lo) - 1, 1)
        y = sy(count)
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{H - MB - y:.1f}" fill="{PALETTE[0]}"/>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(labels: Sequence[str], groups: dict[str, Sequence[float]], *, title: str, ylabel: str) -> str:
    """Grouped bars: one group per label, one bar per ``groups`` key (e.g. infer vs e2e FPS)."""
    values = [v for vs in groups.values() for v in vs]
    if not labels or not values:
        return empty_chart(title)
    _, yt, _, sy = _scales(0, 1, 0.0, max(values))
    out = _frame(title, "", ylabel, [], yt, lambda x: x, sy)
    slot = (W - ML - MR) / len(labels)
    bar = slot * 0.8 / max(len(groups), 1)
    for i, label in enumerate(labels):
        x0 = ML + i * slot + slot * 0.1
        for j, vs in enumerate(groups.values()):
            y = sy(vs[i])
            out.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{H - MB - y:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{html.escape(label)}: {fmt(vs[i])}</title></rect>'
            )
        out.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{H - MB + 16}" text-anchor="middle" class="a">{html.escape(short(label, max(8, int(slot / 6.5))))}</text>'
        )
    out += _legend(list(groups))
    out.append("</svg>")
    return "\n".join(out)


def short(label: str, width: int = 26) -> str:
    """A label that fits under a bar: whole ``a / b / c`` parts from the left, as many as fit."""
    if len(label) <= width:
        return label
    parts = label.split(" / ")
    kept = parts[0][:width]
    for part in parts[1:]:
        if len(kept) + 3 + len(part) > width:
            break
        kept += " / " + part
    return kept


def empty_chart(title: str) -> str:
    """A placeholder saying there is no data (e.g. power on a machine without INA3221)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} 80" width="{W}" height="80">'
        f'<text x="{W / 2}" y="30" text-anchor="middle" class="t">{html.escape(title)}</text>'
        f'<text x="{W / 2}" y="56" text-anchor="middle" class="a">no data</text></svg>'
    )
