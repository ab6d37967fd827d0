"""`--help` works for every command and sub-command."""

from __future__ import annotations

import click
import pytest
import typer
from typer.testing import CliRunner

from edgesdk.cli.app import app


def _paths(cmd: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            paths += _paths(sub, prefix + (name,))
    return paths


COMMANDS = _paths(typer.main.get_command(app))


def test_commands_exist() -> None:
    names = {p[0] for p in COMMANDS if p}
    assert {"export", "recipes", "schema"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "edgesdk")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
