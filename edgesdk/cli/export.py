"""`edgesdk export RECIPE`: import, fix for TensorRT, check parity, write ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgesdk.cli._console import err_console, next_step, print_json
from edgesdk.cli._params import JsonOpt, ModelDirOpt, ModelOpt, OutOpt, RecipeArg
from edgesdk.export import default_output, export_recipe, list_images
from edgesdk.recipe import load_recipe

app = typer.Typer()

ImagesOpt = Annotated[
    Optional[Path],
    typer.Option("--images", help="folder of real images for the parity check (default: synthetic images)"),
]
NoParityOpt = Annotated[bool, typer.Option("--no-parity", help="skip the onnxruntime parity check")]


@app.command("export")
def export_cmd(
    recipe: RecipeArg,
    output: OutOpt = None,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    images: ImagesOpt = None,
    no_parity: NoParityOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a recipe's model to ONNX fixed for TensorRT, checked against the original."""
    spec = load_recipe(recipe)
    target = output or default_output(spec)
    parity_images = list_images(images) if images else None
    with err_console.status(f"exporting {spec.name}") as status:
        result = export_recipe(
            spec,
            model_dir=model_dir,
            model=model,
            check_parity=not no_parity,
            parity_images=parity_images,
            output=target,
            progress=lambda phase: status.update(f"exporting {spec.name}: {phase}"),
        )
    if as_json:
        print_json(result.to_json())
        return
    err_console.print(f"[green]exported[/green] {spec.name} → [bold]{target}[/bold] ({result.seconds:.1f} s)")
    err_console.print(f"  source  {result.source}")
    err_console.print(f"  fixes   {', '.join(result.fixes) or '(none)'}")
    if result.parity is not None:
        err_console.print(f"  parity  {result.parity.summary()} on {result.parity_inputs}")
    next_step(f"edgesdk inspect {target}")
