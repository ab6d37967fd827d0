"""Output helpers: JSON to stdout, everything for humans to a Rich console on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (one document)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def next_step(command: str) -> None:
    """Print the exact next command to run."""
    err_console.print(f"[dim]next:[/dim] [bold]{command}[/bold]")


def live_line(quiet: bool = False) -> Live:
    """A one-line live status on stderr (silent with ``--json``)."""
    console = Console(stderr=True, quiet=True) if quiet else err_console
    return Live(Text("starting…"), console=console, transient=True, redirect_stdout=False)
