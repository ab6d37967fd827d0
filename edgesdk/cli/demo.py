"""`edgesdk demo`: the whole flow on the `local` device with a real model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgesdk.cli._console import err_console, megabytes, next_step, out_console, print_json
from edgesdk.cli._params import JsonOpt, ModelDirOpt
from edgesdk.demo import DEFAULT_RECIPE, run_demo
from edgesdk.report import check_report

app = typer.Typer()


@app.command("demo")
def demo_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe to run")] = DEFAULT_RECIPE,
    model_dir: ModelDirOpt = None,
    images: Annotated[int, typer.Option("--images", help="labelled images to evaluate on")] = 16,
    as_json: JsonOpt = False,
) -> None:
    """Export, deploy to `local`, build the engine and evaluate a real model, end to end."""
    with err_console.status("demo") as status:
        result = run_demo(recipe, model_dir=model_dir, eval_images=images, say=lambda m: status.update(m))
    if as_json:
        print_json(result.to_json())
        return
    d = result.deploy
    assert d is not None
    out_console.print(f"[bold]{result.recipe}[/bold] on [bold]{result.device}[/bold]")
    out_console.print(
        f"  deploy   sent {d.files_sent} files ({megabytes(d.bytes_sent)}), skipped {d.files_skipped}; "
        f"engine {(d.engine or '')[:12]} ({d.build.get('backend')} {d.build.get('effective_precision')}, "
        f"{'cached' if d.build.get('cached') else 'built'}) in {d.seconds:.1f} s"
    )
    if result.evaluation is not None:
        e = result.evaluation
        out_console.print(
            f"  eval     mAP50 {e.map50 * 100:.1f}  mAP50-95 {e.map50_95 * 100:.1f} on {e.images} images "
            f"({e.images_per_s:.1f} images/s)"
        )
    if result.annotated is not None:
        out_console.print(f"  images   annotated copies in {result.annotated}")
    if result.bench is not None:
        b = result.bench
        out_console.print(
            f"  bench    inference {b['infer_fps']:.1f} FPS, end to end {b['e2e_fps']:.1f} FPS on {b['frames']} "
            f"frames of {Path(str(b.get('source'))).name}"
        )
        out_console.print(f"  report   {result.report_html}", highlight=False)
        note = check_report(b, "demo").busy_note()
        if note:
            err_console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    next_step(
        f"edgesdk deploy {result.recipe} --device jetson01   (after `edgesdk devices add jetson01 --host …`)"
    )
