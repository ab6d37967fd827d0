"""The `edgesdk` command-line interface."""

from __future__ import annotations

import sys

from edgesdk import settings
from edgesdk.errors import EdgeSdkError

__all__ = ["main"]


def main() -> None:
    """Entry point: run the app; user errors become one line and a non-zero exit.

    Click runs in standalone mode, so it prints usage errors (unknown command, bad option)
    itself with exit 2 and honours ``typer.Exit(code)``. (Typer vendors its own click, so
    its exceptions cannot be caught as ``click.ClickException`` here.) What reaches us are
    edgesdk's own errors, shown as one line plus a hint; ``--debug`` shows the traceback.
    """
    from edgesdk.cli._console import err_console
    from edgesdk.cli._errors import format_error
    from edgesdk.cli.app import app

    try:
        app()
    except EdgeSdkError as err:
        if settings.debug():
            raise
        message, hint = format_error(err)
        err_console.print(f"[bold red]error:[/bold red] {message}", soft_wrap=True)
        if hint:
            err_console.print(f"[dim]hint:[/dim] {hint}", soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
