"""`edgesdk bench RECIPE --device D`: inference-only and end-to-end numbers from the device."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.text import Text

from edgesdk import settings
from edgesdk.cli._console import err_console, live_line, out_console, print_json
from edgesdk.cli._params import (
    AcceptNewOpt,
    CalibrationOpt,
    DeviceOpt,
    JsonOpt,
    ModelDirOpt,
    OutOpt,
    RecipeArg,
)
from edgesdk.cli.run import DurationOpt, FramesOpt, stats_line
from edgesdk.deploy.camera import bench_on_device
from edgesdk.deploy.inventory import resolve_device
from edgesdk.errors import DeviceError
from edgesdk.recipe import load_recipe
from edgesdk.report import check_report, render_html, render_markdown

app = typer.Typer()

PrecisionsOpt = Annotated[
    Optional[str], typer.Option("--precision", help="comma-separated: fp32,fp16,int8 (default: the recipe's)")
]
SourceOpt = Annotated[
    Optional[str], typer.Option("--source", "-s", help="video/camera URI (default: the recipe's run.source)")
]


@app.command("bench")
def bench_cmd(
    recipe: RecipeArg,
    device: DeviceOpt = None,
    precision: PrecisionsOpt = None,
    source: SourceOpt = None,
    duration: DurationOpt = None,
    frames: FramesOpt = None,
    warmup: Annotated[int, typer.Option("--warmup", help="engine runs before timing")] = 10,
    model_dir: ModelDirOpt = None,
    calibration: CalibrationOpt = None,
    output: OutOpt = None,
    accept_new: AcceptNewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Benchmark RECIPE on a device at each precision: engine alone, then the whole pipeline.

    Each precision is deployed for its run; the deployment active before is active again after.
    """
    spec = load_recipe(recipe)
    target = resolve_device(device or "local")
    precisions = [p.strip() for p in (precision or spec.build.precision).split(",") if p.strip()]
    with live_line(as_json) as live:

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "stats":
                live.update(stats_line(data))
            elif kind == "phase":
                live.update(Text(str(data["what"])))

        try:
            reports = bench_on_device(
                target, spec, settings.work_dir(), precisions=precisions, source=source or spec.run.source,
                frames=frames, duration=duration, warmup=warmup, model_dir=model_dir, calibration=calibration,
                accept_new=accept_new,
                on_event=on_event,
            )  # fmt: skip
        except DeviceError as err:
            if source is None and spec.run.source in str(err):
                # the user gave no source: say which one was used, and how to give another
                err.hint = (err.hint + "; " if err.hint else "") + (
                    f"no --source was given, so the recipe's run.source ({spec.run.source}) was used: "
                    "give --source /path/on/device/clip.mp4 to benchmark on a video"
                )
            raise
    folder = settings.work_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    for data in reports:
        (folder / f"{spec.name}-{target.name}-{data['requested_precision']}.json").write_text(
            json.dumps(data)
        )
    loaded = [check_report(data, f"{target.name}:{data['requested_precision']}") for data in reports]
    if output is not None:
        if output.suffix.lower() in (".html", ".htm"):
            output.write_text(render_html(loaded, title=f"edgesdk bench: {spec.name} on {target.name}"))
        else:
            output.write_text(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
        err_console.print(f"[green]wrote[/green] {output}")
    if as_json:
        print_json(reports if len(reports) > 1 else reports[0])
        return
    out_console.print(render_markdown(loaded), markup=False, highlight=False, soft_wrap=True)
    for d in reports:
        if d["requested_precision"] == "int8" and d.get("precision") != "int8":
            err_console.print(
                f"[yellow]hint:[/yellow] int8 ran in {d.get('precision')} here: give `--calibration OUT` "
                f"from `edgesdk calibrate {spec.name} --images DIR -o OUT`"
            )
    err_console.print(
        f"[dim]reports saved in {folder}; compare runs with `edgesdk report A.json B.json -o report.html`[/dim]"
    )
