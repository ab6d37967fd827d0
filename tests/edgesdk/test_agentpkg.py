"""The agent zipapp is deterministic and runs on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edgesdk.agentpkg import build_agent_zip, write_agent_zip


def test_deterministic() -> None:
    assert build_agent_zip() == build_agent_zip()


def test_zipapp_runs_info(tmp_path: Path) -> None:
    pyz = tmp_path / "edgeagent.pyz"
    write_agent_zip(pyz)
    # -I: isolated mode, so the installed edgeagent is NOT what runs; the zip's copy is
    out = subprocess.run(
        [sys.executable, "-I", str(pyz), "info", "--json"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    event = json.loads(out.stdout.splitlines()[-1])
    assert event["event"] == "result" and event["command"] == "info"
    assert event["data"]["backends"]
    assert "zip" not in event["data"]["python_executable"]


def test_bad_command_exit_code(tmp_path: Path) -> None:
    pyz = tmp_path / "edgeagent.pyz"
    write_agent_zip(pyz)
    out = subprocess.run(
        [sys.executable, "-I", str(pyz), "frobnicate"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
