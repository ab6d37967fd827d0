"""`edgesdk recipes`: list the shipped recipes; `edgesdk schema`: print the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesdk.cli._console import err_console, out_console, print_json
from edgesdk.cli._params import JsonOpt, OutOpt
from edgesdk.recipe import available_recipes, json_schema, load_recipe_file

app = typer.Typer()


@app.command("recipes")
def recipes_cmd(as_json: JsonOpt = False) -> None:
    """List the recipes found by name (built-in and EDGESDK_RECIPE_DIR)."""
    from edgesdk import settings

    rows: list[dict[str, str]] = []
    base = settings.model_dir()
    for name, path in available_recipes().items():
        recipe = load_recipe_file(path)
        model = _model_file(recipe.model)
        rows.append(
            {
                "name": name,
                "task": recipe.task,
                "format": recipe.model.format,
                "decoder": recipe.postprocess.decoder,
                "input": "x".join(str(v) for v in recipe.input.shape),
                "path": str(path),
                "description": recipe.description,
                "model": str(model) if model else "",
                "model_found": "-" if model is None else ("yes" if model.is_file() else "missing"),
            }
        )
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="recipes", title_justify="left")
    # Names are what users type: never cut them. The description only where the terminal has room.
    columns = ["name", "task", "format", "decoder", "input", "model_found"]
    if out_console.width >= 110:
        columns.append("description")
    for col in columns:
        table.add_column("model" if col == "model_found" else col, no_wrap=col != "description")
    for row in rows:
        cells = [row[col] for col in columns]
        if row["model_found"] == "missing":
            cells[columns.index("model_found")] = "[yellow]missing[/yellow]"
        table.add_row(*cells)
    out_console.print(table)
    if any(row["model_found"] == "missing" for row in rows):
        err_console.print(
            f"model files are looked up under {base} (EDGESDK_MODEL_DIR; commands also take --model-dir); "
            "--json lists each recipe's path",
            soft_wrap=True,
        )


def _model_file(source: object) -> Path | None:
    """The file a recipe's model comes from (ONNX path, darknet cfg, torch weights), resolved."""
    from edgesdk.importers.dispatch import locate

    raw = getattr(source, "path", None) or getattr(source, "cfg", None) or getattr(source, "weights", None)
    return locate(str(raw)) if raw else None  # a torch factory without weights: nothing to look for


@app.command("schema")
def schema_cmd(output: OutOpt = None) -> None:
    """Print (or write with -o) the recipe JSON Schema."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
