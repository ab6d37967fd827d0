"""The `edgesdk` command-line interface."""

from __future__ import annotations

import sys

from edgesdk import settings
from edgesdk.errors import EdgeSdkError

__all__ = ["main"]


def main() -> None:
    """Entry point: run the app; user errors become one line and a non-zero exit."""
    import click

    from edgesdk.cli._console import err_console
    from edgesdk.cli._errors import format_error
    from edgesdk.cli.app import app

    try:
        code = app(standalone_mode=False)  # click returns (not raises) `typer.Exit(n)` codes here
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.ClickException as err:  # usage errors: bad option, missing argument
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        err_console.print("[yellow]aborted[/yellow]")
        sys.exit(130)
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
