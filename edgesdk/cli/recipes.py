"""`edgesdk recipes`: list the shipped recipes; `edgesdk schema`: print the JSON Schema."""

from __future__ import annotations

import json

import typer

from edgesdk.cli._console import out_console, print_json
from edgesdk.cli._params import JsonOpt, OutOpt
from edgesdk.recipe import available_recipes, json_schema, load_recipe_file

app = typer.Typer()


@app.command("recipes")
def recipes_cmd(as_json: JsonOpt = False) -> None:
    """List the recipes found by name (built-in and EDGESDK_RECIPE_DIR)."""
    rows: list[dict[str, str]] = []
    for name, path in available_recipes().items():
        recipe = load_recipe_file(path)
        rows.append(
            {
                "name": name,
                "task": recipe.task,
                "format": recipe.model.format,
                "decoder": recipe.postprocess.decoder,
                "input": "x".join(str(v) for v in recipe.input.shape),
                "path": str(path),
                "description": recipe.description,
            }
        )
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="recipes", title_justify="left")
    # Names are what users type: never cut them. The description only where the terminal has room.
    columns = ["name", "task", "format", "decoder", "input"]
    if out_console.width >= 110:
        columns.append("description")
    for col in columns:
        table.add_column(col, no_wrap=col != "description")
    for row in rows:
        table.add_row(*(row[col] for col in columns))
    out_console.print(table)


@app.command("schema")
def schema_cmd(output: OutOpt = None) -> None:
    """Print (or write with -o) the recipe JSON Schema."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
