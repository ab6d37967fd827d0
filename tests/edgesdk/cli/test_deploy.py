"""`edgesdk deploy`: per-device transfer bars and how a failed device is reported."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from typer.testing import CliRunner

from edgesdk.cli.app import app
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


def test_unreachable_device_error_is_printed_whole(
    model_dir_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESDK_CONFIG", str(tmp_path / "devices.yaml"))
    monkeypatch.setenv("EDGESDK_WORK_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("COLUMNS", "80")
    runner = CliRunner()
    added = runner.invoke(app, ["devices", "add", "jetson01", "--host", "127.0.0.1", "--port", "1"])
    assert added.exit_code == 0, added.output
    result = runner.invoke(app, ["deploy", "yunet", "--device", "jetson01"])
    assert result.exit_code == 1
    # the table keeps its columns; the error and the hint come below it, whole (not cut with "…")
    assert "0 files, 0 B" in result.stdout and "error" not in result.stdout
    assert "error (jetson01): cannot connect to jetson01" in result.stderr
    assert "is the port right?" in " ".join(result.stderr.split())
    assert "hint (jetson01):" in result.stderr
