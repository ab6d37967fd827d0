"""`--help` works for every command and sub-command."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from edgesdk.cli.app import app


def _paths(cmd: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Typer vendors its own click: check groups by shape, not by click.Group.
    paths = [prefix]
    commands = getattr(cmd, "commands", None)
    if isinstance(commands, dict):
        for name, sub in commands.items():
            paths += _paths(sub, prefix + (name,))
    return paths


COMMANDS = _paths(typer.main.get_command(app))


def test_commands_exist() -> None:
    names = {p[0] for p in COMMANDS if p}
    assert {"export", "recipes", "schema", "eval", "inspect", "deploy", "rollback"} <= names
    assert len(COMMANDS) > 8


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "edgesdk")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
