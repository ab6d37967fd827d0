"""`edgesdk deploy`'s per-device transfer bars."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from edgesdk.cli.deploy import _Bars


def _render(events: list[tuple[str, dict]]) -> str:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=False)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[step]}"),
    )
    with Progress(*columns, console=console) as progress:
        bars = _Bars(progress)
        for kind, data in events:
            bars("jetson01", kind, data)
    return out.getvalue()


def test_finished_bar_says_done_not_the_last_step() -> None:
    text = _render(
        [
            ("plan", {"bytes": 2_000_000, "files": 2}),
            ("bytes", {"done": 2_000_000}),
            ("step", {"what": "unlock"}),
            ("done", {"ok": True}),
        ]
    )
    assert "done" in text and "unlock" not in text
    assert "2.0/2.0 MB" in text


def test_failed_device_and_nothing_to_send() -> None:
    text = _render(
        [("plan", {"bytes": 0, "files": 0}), ("step", {"what": "build engine"}), ("done", {"ok": False})]
    )
    assert "failed" in text and "build engine" not in text
    assert "0/1" not in text  # nothing to send is not "0 of 1 byte"
