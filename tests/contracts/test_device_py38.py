"""device/ must run on JetPack 5's Python 3.8: vermin finds no newer syntax or library use."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgesdk import settings


def test_device_is_python38_compatible() -> None:
    vermin = shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin not installed (pip install -e '.[test]')")
    out = subprocess.run(
        [
            vermin,
            "-q",
            "--no-tips",
            "--violations",
            "--eval-annotations",
            "-t=3.8-",
            str(settings.REPO_ROOT / "device"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr
