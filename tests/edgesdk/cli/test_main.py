"""The real entry point (a subprocess, as users run it): exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesdk", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_unknown_command_is_a_usage_error() -> None:
    out = _run("frobnicate")
    assert out.returncode == 2
    assert "No such command" in out.stderr and "Traceback" not in out.stderr


def test_bad_option_is_a_usage_error() -> None:
    out = _run("export", "yolox-nano", "--no-such-flag")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_user_error_is_one_line_with_hint(tmp_path: Path) -> None:
    out = _run("export", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "missing.yaml" in lines[0]
    assert lines[1].startswith("hint:")
    assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    out = _run("--debug", "export", str(tmp_path / "missing.yaml"))
    assert out.returncode != 0 and "Traceback" in out.stderr and "ArtifactNotFound" in out.stderr


def test_help_and_version() -> None:
    assert _run("--help").returncode == 0
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.startswith("edgesdk ")


def test_status_of_a_fresh_local_device(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, HOME=str(tmp_path), EDGESDK_WORK_DIR=str(tmp_path / "work"))
    out = _run("status", env=env)
    assert out.returncode == 0, out.stderr
    assert "local: nothing deployed" in out.stderr
    out = _run("status", "--json", env=env)
    assert out.returncode == 0 and '"recipes": {}' in out.stdout


def test_device_errors_get_no_generic_debug_hint() -> None:
    from edgesdk.cli._errors import format_error
    from edgesdk.errors import DeviceError, EdgeSdkError

    # the agent's message is the whole story; the host's --debug would only add the host's traceback
    assert format_error(DeviceError("run failed on local: out.xyz: cannot tell what kind of sink")) == (
        "run failed on local: out.xyz: cannot tell what kind of sink",
        "",
    )
    assert format_error(DeviceError("x", hint="deploy it first"))[1] == "deploy it first"
    assert format_error(EdgeSdkError("x"))[1] == "run with --debug for details"
