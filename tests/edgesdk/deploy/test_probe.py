"""The versions probe runs on the device's Python 3.8 with the standard library only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from edgesdk.deploy import _probe
from edgesdk.deploy.facts import PROBE_SOURCE, parse_probe
from tests.edgesdk.deploy._python38 import python38


def test_probe_source_is_python38_compatible() -> None:
    vermin = shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin not installed (pip install -e '.[test]')")
    out = subprocess.run(
        [vermin, "-q", "--no-tips", "--violations", "--eval-annotations", "-t=3.8-", _probe.__file__],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_probe_runs_on_real_python38_from_stdin() -> None:
    python = python38()
    if python is None:
        pytest.skip("no python3.8 on this machine")
    out = subprocess.run([python, "-"], input=PROBE_SOURCE, capture_output=True, timeout=120, check=True)
    facts = parse_probe(out.stdout.decode())
    assert facts["python"].startswith("3.8.") and facts["python_executable"] == python


def test_probe_tolerates_missing_and_broken_modules(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A cv2 that raises on import and a numpy that is missing: the probe still prints its JSON.
    (tmp_path / "cv2.py").write_text("raise RuntimeError('broken build')\n")
    (tmp_path / "numpy.py").write_text("raise ImportError('no numpy')\n")
    out = subprocess.run(
        [sys.executable, "-"],
        input=PROBE_SOURCE,
        capture_output=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    data = json.loads(out.stdout)
    assert data["opencv"] is None and data["numpy"] is None and data["probe"] == 1


def test_importing_the_probe_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    importlib.reload(_probe)
    assert capsys.readouterr().out == ""
