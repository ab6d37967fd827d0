"""`edgesdk deploy`, `rollback` and `status`: push a recipe to devices, build there, activate; what is deployed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn
from rich.table import Table

from edgesdk import settings
from edgesdk.cli._console import engine_label, err_console, megabytes, next_step, out_console, print_json
from edgesdk.cli._params import (
    AcceptNewOpt,
    CalibrationOpt,
    DeviceOpt,
    GroupOpt,
    JsonOpt,
    ModelDirOpt,
    ModelOpt,
    RecipeArg,
)
from edgesdk.deploy.flow import DeviceReport, deploy, deployment_status, rollback
from edgesdk.deploy.inventory import Device, devices_in_group, resolve_device
from edgesdk.export import list_images
from edgesdk.recipe import load_recipe, override

app = typer.Typer()

PrecisionOpt = Annotated[
    Optional[str],
    typer.Option("--precision", help="fp32 | fp16 | int8 (default: the recipe's build.precision)"),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="print the plan; send and change nothing")]
ImagesOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--images", help="real images for the export's parity check and for slimming (slim.enabled)"
    ),
]


def _devices(device: str | None, group: str | None) -> list[Device]:
    if device and group:
        raise typer.BadParameter("give --device or --group, not both")
    if group:
        return devices_in_group(group)
    return [resolve_device(device or "local")]


class _Bars:
    """One transfer bar per device, fed by deploy events from worker threads."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.base: dict[str, int] = {}
        self.current: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, device: str, kind: str, data: dict[str, Any]) -> None:
        with self.lock:
            if kind == "plan":
                self.totals[device] = int(data["bytes"])
                self.tasks[device] = self.progress.add_task(device, total=self.totals[device], step="push")
                self.base[device], self.current[device] = 0, 0
            elif kind == "put" and device in self.tasks:
                self.base[device] += self.current[device]
                self.current[device] = 0
            elif kind == "bytes" and device in self.tasks:
                self.current[device] = int(data["done"])
                self.progress.update(self.tasks[device], completed=self.base[device] + self.current[device])
            elif kind == "step" and device in self.tasks:
                self.progress.update(self.tasks[device], step=data["what"])
            elif kind == "log" and data.get("level") in ("warning", "error"):
                # e.g. the device cannot build the precision asked for: say so, not only in the table
                self.progress.console.print(
                    f"[yellow]{data['level']} ({device}):[/yellow] {data.get('message')}"
                )
            elif kind == "done" and device in self.tasks:
                # the last step's name ("unlock") would otherwise stay on the finished bar
                task = self.tasks[device]
                step = "done" if data.get("ok") else "[red]failed[/red] (see below)"
                self.progress.update(task, completed=self.totals[device], step=step)
            elif kind == "progress" and device in self.tasks and data.get("phase"):
                self.progress.update(
                    self.tasks[device], step=f"{data['phase']} {data.get('done')}/{data.get('total')}"
                )


def _table(reports: list[DeviceReport]) -> Table:
    table = Table(title="deploy", title_justify="left")
    # errors are printed in full below the table: as a column they squeezed every other one
    for col in ("device", "ok", "sent", "skipped", "engine", "build", "seconds"):
        table.add_column(col, no_wrap=col != "build")
    for r in reports:
        row = [
            r.device,
            "[green]yes[/green]" if r.ok else "[red]no[/red]",
            f"{r.files_sent} file{'' if r.files_sent == 1 else 's'}, {megabytes(r.bytes_sent)}",
            str(r.files_skipped),
            (r.engine or "")[:8],
            engine_label(r.build),
            f"{r.seconds:.1f}",
        ]
        table.add_row(*row)
    return table


@app.command("deploy")
def deploy_cmd(
    recipe: RecipeArg,
    device: DeviceOpt = None,
    group: GroupOpt = None,
    precision: PrecisionOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    images: ImagesOpt = None,
    calibration: CalibrationOpt = None,
    accept_new: AcceptNewOpt = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Export, bundle and push RECIPE to a device (default `local`), build the engine there, activate it."""
    spec = load_recipe(recipe)
    if precision is not None:
        spec = override(spec, {"build.precision": precision}, "--precision")
    targets = _devices(device, group)
    parity = list_images(images) if images else None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[step]}"),
    )
    with Progress(*columns, console=err_console, transient=False, disable=as_json) as progress:
        reports = deploy(
            spec,
            targets,
            settings.work_dir(),
            model_dir=model_dir,
            model=model,
            accept_new=accept_new,
            dry_run=dry_run,
            parity_images=parity,
            calibration=calibration,
            slim_images=images,
            on_event=_Bars(progress),
        )
    if as_json:
        print_json([r.to_json() for r in reports] if len(reports) > 1 else reports[0].to_json())
    else:
        for r in reports:
            if r.plan is not None:
                out_console.print(f"[bold]plan for {r.device}[/bold] (nothing was changed):")
                for line in r.plan:
                    out_console.print(f"  {line}", soft_wrap=True)
        slim = reports[0].slim if reports else None
        if slim:
            (f0, f1), (p0, p1) = slim["flops"], slim["params"]
            out_console.print(
                f"slimmed ({slim['method']}, {slim['removed_flops']:.1%} of FLOPs removed): "
                f"{f0 / 1e9:.3f} -> {f1 / 1e9:.3f} GFLOPs, {p0 / 1e6:.3f} -> {p1 / 1e6:.3f} M params"
            )
        out_console.print(_table(reports))
        for r in reports:
            if not r.ok:
                err_console.print(f"[red]error ({r.device}):[/red] {r.error or 'failed'}", soft_wrap=True)
                if r.hint:
                    err_console.print(f"[dim]hint ({r.device}):[/dim] {r.hint}", soft_wrap=True)
        if all(r.ok for r in reports) and not dry_run:
            next_step(
                f"edgesdk run {spec.name} --device {targets[0].name} --source …   (camera, video or images)"
            )
            if any(r.previous for r in reports):
                next_step(f"edgesdk rollback {spec.name} --device {targets[0].name}   (to go back)")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@app.command("rollback")
def rollback_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name as deployed")],
    device: DeviceOpt = None,
    accept_new: AcceptNewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-activate the previous deployment of RECIPE on a device (and its cached engine)."""
    target = resolve_device(device or "local")
    result = rollback(recipe, target, settings.work_dir(), accept_new=accept_new)
    if as_json:
        print_json(result)
        return
    current = result["deployment"]["current"]
    err_console.print(
        f"[green]rolled back[/green] {recipe} on {target.name} to bundle {current[:12]} "
        f"(engine {result['engine']['engine'][:12]})"
    )


@app.command("status")
def status_cmd(
    device: DeviceOpt = None,
    group: GroupOpt = None,
    accept_new: AcceptNewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """What is deployed on a device: each recipe's bundle, engine, precision and earlier deployments."""
    targets = _devices(device, group)
    results = {d.name: deployment_status(d, settings.work_dir(), accept_new=accept_new) for d in targets}
    if as_json:
        print_json(results if len(results) > 1 else results[targets[0].name])
        return
    for name, status in results.items():
        recipes = status.get("recipes") or {}
        if not recipes:
            err_console.print(f"{name}: nothing deployed ({status.get('home')})")
            continue
        table = Table(title=f"{name} ({status.get('home')})", title_justify="left")
        for col in ("recipe", "bundle", "engine", "build", "activated", "earlier"):
            table.add_column(col, no_wrap=col != "build")
        for recipe_name, r in sorted(recipes.items()):
            engine = r.get("engine")
            table.add_row(
                recipe_name,
                (r.get("current") or "-")[:8],
                engine[:8] if engine else "[red]missing[/red]",
                engine_label(r) if engine else "",
                _when(r.get("activated")),
                str(len(r.get("history") or [])),
            )
        out_console.print(table)


def _when(epoch: float | None) -> str:
    return "-" if not epoch else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
