"""`edgesdk bench`: what it says when the source it fell back to cannot be opened."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesdk.cli.app import app
from edgesdk.errors import DeviceError


def test_no_source_names_the_recipe_default_and_the_flag(
    model_dir_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the local device's agent home
    monkeypatch.setenv("EDGESDK_WORK_DIR", str(tmp_path / "out"))
    # yunet's run.source is csi://0, which a machine without GStreamer (or a CSI camera) cannot open
    result = CliRunner().invoke(app, ["bench", "yunet", "--frames", "2", "--precision", "fp32"])
    assert result.exit_code != 0 and isinstance(result.exception, DeviceError), result.output
    assert "no --source was given, so the recipe's run.source (csi://0) was used" in (
        result.exception.hint or ""
    )
