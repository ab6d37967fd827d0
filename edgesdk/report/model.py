"""Benchmark reports as data: load the agent's JSON, check it, and derive rows for renderers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesdk.errors import ArtifactNotFound, EdgeSdkError

STAGES = ("capture", "preprocess", "infer", "postprocess", "sink", "e2e", "infer_only")
REQUIRED = ("infer_fps", "e2e_fps", "latency_ms", "frames")
BUSY_SHARE = 0.10
"""Other processes' share of the CPUs above which a run is called disturbed."""


class ReportError(EdgeSdkError, ValueError):
    """A file is not a benchmark report edgesdk can read."""

    exit_code = 2


@dataclass(frozen=True)
class Report:
    """One benchmark run (the agent's JSON) and a short label for tables and legends."""

    data: dict[str, Any]
    source: str

    @property
    def label(self) -> str:
        d = self.data
        parts = [str(d.get("model", "?"))]
        precision, asked = d.get("precision"), d.get("requested_precision")
        if precision:
            parts.append(f"{precision} (asked {asked})" if asked and asked != precision else str(precision))
        for key in ("backend", "device"):
            if d.get(key):
                parts.append(str(d[key]))
        return " / ".join(parts)

    def stage(self, name: str) -> dict[str, float]:
        return dict(self.data.get("latency_ms", {}).get(name) or {})

    @property
    def background_share(self) -> float | None:
        """The share of the device's CPUs other processes used during the run (None: unknown)."""
        share = (self.data.get("background_cpu") or {}).get("share")
        return float(share) if isinstance(share, (int, float)) else None

    def busy_note(self) -> str | None:
        """A one-line warning when other processes used much of the CPUs during the run, else None."""
        share = self.background_share
        if share is None or share < BUSY_SHARE:
            return None
        return (
            f"{self.label}: other processes used {100 * share:.0f} % of the device's CPUs during the run, "
            "so its FPS figures read low and scattered; re-run on an idle device"
        )

    @property
    def stages(self) -> list[str]:
        present = self.data.get("latency_ms", {})
        return [s for s in STAGES if present.get(s)] + sorted(set(present) - set(STAGES))


_REPORTS_HINT = "give the reports `edgesdk bench` saved (out/reports/*.json) or wrote with `-o report.json`"


def check_report(data: Any, source: str) -> Report:
    """Wrap ``data`` as a :class:`Report`, checking the keys renderers need.

    Raises:
        ReportError: not a mapping, or a required key is missing.
    """
    if not isinstance(data, dict):
        raise ReportError(f"{source} is not a benchmark report (a JSON object was expected)")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ReportError(
            f"{source} is not a benchmark report: missing {', '.join(missing)}",
            hint=_REPORTS_HINT,
        )
    return Report(data, source)


def load_report(path: Path) -> Report:
    """Read one report file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactNotFound(f"report {path} does not exist", hint=_REPORTS_HINT) from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ReportError(f"{path} is not JSON: {err}", hint=_REPORTS_HINT) from err
    return check_report(data, str(path))


def summary_row(report: Report) -> dict[str, Any]:
    """The numbers of one run that a comparison table shows."""
    d = report.data
    e2e = report.stage("e2e")
    power = d.get("power") or {}
    means = power.get("mean_mw") or {}
    return {
        "run": report.label,
        "infer_fps": d.get("infer_fps"),
        "e2e_fps": d.get("e2e_fps"),
        "e2e_over_infer": d.get("e2e_over_infer"),
        "frames": d.get("frames"),
        "dropped": d.get("dropped"),
        "e2e_p50_ms": e2e.get("p50"),
        "e2e_p99_ms": e2e.get("p99"),
        "power_mw": means.get("total") if isinstance(means, dict) else None,
        "mj_per_inference": power.get("energy_per_inference_mj"),
    }
