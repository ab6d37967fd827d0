"""What a slimming run produced, as data (JSON) and as Markdown (docs, benchmarks).

The Rich table of ``edgesdk slim`` is rendered by the CLI from the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesdk.slim.measure import ModelStats
from edgesdk.slim.plan import SlimPlan


@dataclass
class SlimReport:
    """One ``slim`` run.

    Attributes:
        recipe: recipe name.
        plan: the plan (what was, or would be, cut).
        before / after: the model's numbers before and after (``after`` is None on a dry run).
        output: where the slim model was written (None: not written).
        seconds: wall time of the whole run.
        latency: how latency was measured (threads, runs), or None.
        data: the labelled folder mAP was measured on (and image count), or None.
        calibration: what data-driven methods sampled (folder, image count), or None.
        notes: anything the reader should know (e.g. a reconstruction step).
    """

    recipe: str
    plan: SlimPlan
    before: ModelStats
    after: ModelStats | None = None
    output: Path | None = None
    seconds: float = 0.0
    latency: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dry_run(self) -> bool:
        """No model was produced."""
        return self.after is None

    def ratios(self) -> dict[str, float | None]:
        """after / before for params, FLOPs and latency (None where not measured)."""
        if self.after is None:
            return {
                "params": None,
                "flops": self.plan.flops_after / max(1, self.plan.flops_before),
                "latency": None,
            }
        latency = None
        if self.after.latency_ms is not None and self.before.latency_ms:
            latency = self.after.latency_ms / self.before.latency_ms
        return {
            "params": self.after.params / max(1, self.before.params),
            "flops": self.after.flops / max(1, self.before.flops),
            "latency": latency,
        }

    def to_json(self, *, groups: bool = True) -> dict[str, Any]:
        """Plain data; the plan's per-group entries only when ``groups``."""
        plan = self.plan.to_json()
        if not groups:
            plan.pop("groups")
        ratios = {k: (round(v, 4) if v is not None else None) for k, v in self.ratios().items()}
        return {
            "recipe": self.recipe,
            "dry_run": self.dry_run,
            "method": self.plan.method,
            "ratio": self.plan.ratio,
            "before": self.before.to_json(),
            "after": self.after.to_json() if self.after else None,
            "ratios": ratios,
            "output": str(self.output) if self.output else None,
            "seconds": round(self.seconds, 2),
            "latency": self.latency,
            "data": self.data,
            "calibration": self.calibration,
            "notes": self.notes,
            "plan": plan,
        }


MARKDOWN_HEADER = (
    "| model | method | asked | FLOPs removed | params | GFLOPs | latency ratio | mAP50 before | mAP50 after |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}"


def markdown_row(report: SlimReport) -> str:
    """One row under :data:`MARKDOWN_HEADER`."""
    before, after = report.before, report.after or report.before
    ratios = report.ratios()
    latency = "n/a" if ratios["latency"] is None else f"{ratios['latency']:.2f}"
    removed = 1.0 - (ratios["flops"] or 1.0)
    return (
        f"| {report.recipe} | {report.plan.method} | {report.plan.ratio:.0%} | {removed:.1%} "
        f"| {before.params / 1e6:.3f}M → {after.params / 1e6:.3f}M "
        f"| {before.flops / 1e9:.3f} → {after.flops / 1e9:.3f} | {latency} "
        f"| {_pct(before.map50)} | {_pct(after.map50 if report.after else None)} |"
    )
