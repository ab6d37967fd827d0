"""The agent's command line: a missing third-party package is a MissingDependency, not a bug."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeagent.cli import missing_dependency
from edgeagent.events import EXIT_MISSING_DEPENDENCY

DEVICE_DIR = Path(__file__).resolve().parents[2] / "device"


def test_missing_dependency_names_package_python_and_fix() -> None:
    err = missing_dependency(ModuleNotFoundError("No module named 'cv2'", name="cv2"))
    assert err is not None and err.exit_code == EXIT_MISSING_DEPENDENCY
    assert "OpenCV is not installed" in str(err) and sys.executable in str(err)
    assert "opencv" in (err.hint or "") and "--python" in (err.hint or "")
    assert missing_dependency(ModuleNotFoundError("x", name="numpy.linalg")) is not None  # a submodule
    assert missing_dependency(ModuleNotFoundError("x", name="edgeagent.nothing")) is None  # our own: a bug
    assert missing_dependency(ImportError("cannot import name 'x'")) is None


def _python_without_numpy() -> str:
    for candidate in ("/usr/bin/python3", shutil.which("python3.8") or ""):
        if not candidate or not os.path.exists(candidate):
            continue
        probe = subprocess.run([candidate, "-c", "import numpy"], capture_output=True)
        if probe.returncode != 0:
            return candidate
    pytest.skip("no Python without numpy on this machine (the case this test needs)")


def test_agent_on_a_python_without_numpy_says_what_to_install(tmp_path: Path) -> None:
    python = _python_without_numpy()
    env = {**os.environ, "PYTHONPATH": str(DEVICE_DIR)}
    done = subprocess.run(
        [python, "-m", "edgeagent", "run", "yunet", "--source", "x.mp4", "--home", str(tmp_path), "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == EXIT_MISSING_DEPENDENCY, done.stderr
    event = json.loads(done.stdout.strip().splitlines()[-1])
    assert event["kind"] == "MissingDependency" and "numpy is not installed" in event["message"]
    assert "Traceback" not in done.stderr
