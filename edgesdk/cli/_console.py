"""Output helpers: JSON to stdout, everything for humans to a Rich console on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
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


@contextmanager
def phase_bars(
    prefix: str, names: Mapping[str, str] | None = None
) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars on stderr, one per phase: yields ``progress(phase, done, total)``.

    Bars show only on a terminal: redirected stderr (CI logs) would get stray blank lines, so
    there each phase gets one line when it starts (and says how many items it has).
    """
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    terminal = err_console.is_terminal
    with Progress(*columns, console=err_console, transient=True, disable=not terminal) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = f"{prefix}: {(names or {}).get(phase, phase)}"
                tasks[phase] = bar.add_task(label, total=total)
                if not terminal:
                    err_console.print(f"{label} ({total})", highlight=False)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress


def engine_label(build: Mapping[str, Any]) -> str:
    """``ort fp32 (fp16 asked)``: the engine's backend and the precision it really has, plus the
    one asked for when it differs (and ``, cached`` for a cache hit). Empty without a build."""
    if not build:
        return ""
    asked = build.get("precision")
    got = build.get("effective_precision") or asked
    text = f"{build.get('backend')} {got}" + (f" ({asked} asked)" if asked != got else "")
    return text + (", cached" if build.get("cached") else "")


def megabytes(n: int) -> str:
    """``7.9 MB`` (``2,125 B`` below 0.1 MB)."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} B"
