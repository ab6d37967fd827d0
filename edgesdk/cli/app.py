"""The `edgesdk` command: composes one Typer app per command group."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from edgesdk import __version__
from edgesdk.cli import (
    bench,
    calibrate,
    demo,
    deploy,
    devices,
    eval,
    export,
    inspect,
    recipes,
    report,
    run,
    slim,
)

app = typer.Typer(
    name="edgesdk",
    help="Take YOLO and face detectors from a recipe to a Jetson: export, inspect, evaluate, deploy.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="markdown",  # docstring paragraphs re-flow to the terminal's width
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgesdk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log more")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    if debug:
        os.environ["EDGESDK_DEBUG"] = "1"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


for _group in (recipes, export, slim, calibrate, eval, inspect, deploy, demo, report, run, bench):
    app.add_typer(_group.app)
app.add_typer(devices.app, name="devices")
