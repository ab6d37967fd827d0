"""`edgesdk report A.json B.json… [-o report.html]`: compare benchmark runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgesdk.cli._console import err_console, out_console
from edgesdk.cli._params import OutOpt
from edgesdk.report import load_report, render_html, render_markdown

app = typer.Typer()


@app.command("report")
def report_cmd(
    reports: Annotated[
        list[Path], typer.Argument(help="benchmark JSON files (from `edgesdk bench -o X.json`)")
    ],
    output: OutOpt = None,
) -> None:
    """Compare benchmark runs: Markdown on the terminal, HTML with plots with -o report.html."""
    loaded = [load_report(path) for path in reports]
    if output is not None and output.suffix.lower() in (".html", ".htm"):
        output.write_text(render_html(loaded), encoding="utf-8")
        err_console.print(f"[green]wrote[/green] {output} ({len(loaded)} run(s))")
        return
    text = render_markdown(loaded)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"[green]wrote[/green] {output}")
        return
    out_console.print(text, markup=False, highlight=False, soft_wrap=True)
