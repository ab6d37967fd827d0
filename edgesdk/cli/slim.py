"""`edgesdk slim RECIPE`: structured channel pruning of the exported model (plan, apply, measure)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from edgesdk.cli._console import err_console, next_step, out_console, print_json
from edgesdk.cli._params import JsonOpt, ModelDirOpt, ModelOpt, OutOpt, RecipeArg
from edgesdk.recipe import load_recipe, override

app = typer.Typer()

MethodOpt = Annotated[
    Optional[str],
    typer.Option(
        "--method",
        help="l1 (filter norms), bn (BatchNorm |gamma|), thinet, lasso, sss (default: the recipe's slim.method)",
    ),
]
RatioOpt = Annotated[
    Optional[float],
    typer.Option("--ratio", help="fraction of FLOPs to remove, e.g. 0.3 (default: the recipe's slim.ratio)"),
]
ScopeOpt = Annotated[
    Optional[str], typer.Option("--scope", help="global (one threshold) or uniform (same per layer)")
]
RoundToOpt = Annotated[
    Optional[int],
    typer.Option(
        "--round-to", help="keep channel counts at multiples of N (default: the recipe's slim.round_to)"
    ),
]
ImagesOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--images",
        help="calibration image folder: sampled by thinet/lasso/sss; with l1/bn it enables the "
        "least-squares refit of the next layers",
    ),
]
TargetOpt = Annotated[
    Optional[str],
    typer.Option(
        "--target",
        help="thinet/lasso: flops (least damage per FLOP, best accuracy) or latency (least damage per "
        "predicted ms of CPU time: faster at the same FLOPs ratio; default: the recipe's slim.target)",
    ),
]
MatchOpt = Annotated[
    Optional[str],
    typer.Option(
        "--match",
        help="none, affine or mean: after the refit, match the refitted convs' output statistics to the "
        "unpruned model's (helps face detectors; default: the recipe's slim.match)",
    ),
]
TensorShareOpt = Annotated[
    Optional[float],
    typer.Option(
        "--tensor-share",
        min=0.0,
        help="thinet/lasso: weight of the output-tensor damage next to the detection damage (default: the "
        "recipe's slim.tensor_share, else 0.1; yolo-fastest and ultraface plan better with 3-10)",
    ),
]
JointOpt = Annotated[
    Optional[int],
    typer.Option(
        "--joint",
        min=0,
        help="after the refit, Adam steps fitting each cut conv's kept filters together with the convs that "
        "read them (0: off; default: the recipe's slim.joint)",
    ),
]
DataOpt = Annotated[
    Optional[Path], typer.Option("--data", help="labelled folder: also report mAP before and after")
]
LimitOpt = Annotated[
    Optional[int], typer.Option("--limit", min=1, help="evaluate only the first N images of --data")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="make and print the plan; write nothing")]
PlanOpt = Annotated[
    Optional[Path], typer.Option("--plan", help="apply this reviewed plan (JSON) instead of making one")
]
SavePlanOpt = Annotated[Optional[Path], typer.Option("--save-plan", help="also write the plan (JSON) here")]
LatencyRunsOpt = Annotated[
    int, typer.Option("--latency-runs", min=0, help="timed onnxruntime CPU runs per model (0: skip)")
]


def _overrides(
    method: str | None,
    ratio: float | None,
    scope: str | None,
    round_to: int | None,
    target: str | None,
    match: str | None = None,
    tensor_share: float | None = None,
    joint: int | None = None,
) -> dict[str, Any]:
    given = {
        "slim.method": method,
        "slim.ratio": ratio,
        "slim.scope": scope,
        "slim.round_to": round_to,
        "slim.target": target,
        "slim.match": match,
        "slim.tensor_share": tensor_share,
        "slim.joint": joint,
    }
    return {key: value for key, value in given.items() if value is not None}


@app.command("slim")
def slim_cmd(
    recipe: RecipeArg,
    method: MethodOpt = None,
    ratio: RatioOpt = None,
    scope: ScopeOpt = None,
    round_to: RoundToOpt = None,
    weigh: TargetOpt = None,
    match: MatchOpt = None,
    tensor_share: TensorShareOpt = None,
    joint: JointOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    images: ImagesOpt = None,
    data: DataOpt = None,
    limit: LimitOpt = None,
    dry_run: DryRunOpt = False,
    plan: PlanOpt = None,
    save_plan: SavePlanOpt = None,
    output: OutOpt = None,
    latency_runs: LatencyRunsOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Prune whole channels of the exported model so that --ratio of its FLOPs go.

    Prints params, FLOPs and onnxruntime CPU latency before and after (and mAP with --data).
    Review first with --dry-run (--json shows every channel group and why a group is kept).
    """
    from edgesdk.slim.driver import default_output, slim_recipe
    from edgesdk.slim.plan import SlimPlan

    spec = load_recipe(recipe)
    updates = _overrides(method, ratio, scope, round_to, weigh, match, tensor_share, joint)
    if updates:
        spec = override(spec, updates, "the slim options")
    target = None if dry_run else (output or default_output(spec))
    reviewed = SlimPlan.load(plan) if plan is not None else None
    with err_console.status(f"slimming {spec.name}") as status:
        report = slim_recipe(
            spec,
            model_dir=model_dir,
            model=model,
            images=images,
            data=data,
            data_limit=limit,
            dry_run=dry_run,
            output=target,
            plan=reviewed,
            latency_runs=latency_runs,
            progress=lambda phase: _progress(status, spec.name, phase),
        )
    if save_plan is not None:
        report.plan.save(save_plan)
    if as_json:
        print_json(report.to_json(groups=dry_run))
        return
    _render(report)
    if dry_run:
        next_step(
            f"edgesdk slim {recipe} --method {report.plan.method} --ratio {report.plan.ratio} -o OUT.onnx"
        )
    elif report.output is not None:
        if report.data is None:  # no --data: accuracy not checked yet
            next_step(f"edgesdk eval {recipe} --model {report.output} --data DIR   (mAP after pruning)")
        next_step(f"edgesdk deploy {recipe} --model {report.output} --device …")


def _progress(status: Any, name: str, phase: str) -> None:
    """The live status line; in a log (not a terminal) one line per phase, without the counts."""
    if err_console.is_terminal:
        status.update(f"slimming {name}: {phase}")
    elif ":" not in phase:
        err_console.print(f"slimming {name}: {phase}", highlight=False)


def _fmt_map(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def _render(report: Any) -> None:
    from rich.table import Table

    plan, before, after = report.plan, report.before, report.after
    weighed = ", cuts weighed per predicted CPU ms" if plan.target == "latency" else ""
    title = (
        f"{report.recipe}: {plan.method}, {plan.scope}, asked {plan.ratio:.0%} of FLOPs, "
        f"round-to {plan.round_to}{weighed}"
    )
    out_console.print(title, highlight=False, soft_wrap=True)  # a table title would wrap at the table's width
    table = Table()
    table.add_column("")
    for column in ("before", "after" if after else "planned", "ratio"):
        table.add_column(column, justify="right")
    ratios = report.ratios()
    planned_flops = after.flops if after else plan.flops_after
    table.add_row(
        "params", f"{before.params:,}", f"{after.params:,}" if after else "-", _ratio(ratios["params"])
    )
    table.add_row(
        "GFLOPs", f"{before.flops / 1e9:.3f}", f"{planned_flops / 1e9:.3f}", _ratio(ratios["flops"])
    )
    if before.latency_ms is not None:
        table.add_row(
            "latency ms (ORT CPU)",
            f"{before.latency_ms:.2f}",
            f"{after.latency_ms:.2f}" if after and after.latency_ms is not None else "-",
            _ratio(ratios["latency"]),
        )
    if before.map50 is not None:
        table.add_row("mAP50", _fmt_map(before.map50), _fmt_map(after.map50 if after else None), "")
    out_console.print(table)
    pruned = [g for g in plan.groups if g.removed]
    kept_whole = [g for g in plan.groups if g.reasons]
    err_console.print(
        f"  {len(pruned)} channel group(s) pruned, {len(kept_whole)} kept whole "
        f"(outputs, heads, unsupported ops; --dry-run --json lists the reasons)"
    )
    for note in report.notes:
        err_console.print(f"  note: {note}")
    hint = _latency_hint(ratios, plan.round_to)
    if hint:
        err_console.print(f"  [yellow]note:[/yellow] {hint}", soft_wrap=True)
    if report.output is not None:
        err_console.print(f"[green]wrote[/green] [bold]{report.output}[/bold] ({report.seconds:.1f} s)")


LATENCY_GAP = 0.15
"""Latency ratio this much above the FLOPs ratio earns the channel-block hint."""


def _latency_hint(ratios: dict[str, float | None], round_to: int) -> str | None:
    """Why CPU latency can fall much less than FLOPs, and what to try (None when it did not)."""
    flops, latency = ratios.get("flops"), ratios.get("latency")
    if flops is None or latency is None or latency - flops < LATENCY_GAP or round_to >= 16:
        return None
    return (
        f"CPU latency fell much less than FLOPs ({latency:.2f} vs {flops:.2f}): onnxruntime's CPU "
        "convolutions work in blocks of 8 (AVX2) or 16 (AVX-512) channels, so a count between two "
        "blocks costs as much as the next one. For a CPU target try --round-to 16 or --target latency; "
        "for TensorRT on a Jetson, multiples of 8 (the default) are what matters"
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
