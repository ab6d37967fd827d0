"""`edgesdk demo` runs the whole flow on the local device with a real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesdk.cli.app import app


def test_demo_json(models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDGESDK_WORK_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("EDGESDK_MODEL_DIR", str(tmp_path / "no-models-here"))  # falls back to the shared tree
    result = CliRunner().invoke(app, ["demo", "yunet", "--images", "4", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["deploy"]["ok"] is True and data["deploy"]["engine"]
    assert data["eval"]["images"] == 4 and 0.0 < data["eval"]["map50"] <= 1.0
    assert Path(data["model_dir"]) == models_dir
    assert len(list(Path(data["annotated"]).glob("*.jpg"))) == 2  # bus.jpg and zidane.jpg, with boxes drawn
    assert data["bench"]["frames"] == 23 and data["bench"]["e2e_fps"] > 0  # the whole face GIF
    assert Path(data["report_html"]).read_text().startswith("<!doctype html>")


def test_demo_without_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESDK_MODEL_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("EDGESDK_TEST_DATA", str(tmp_path / "none2"))
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code != 0
    assert "no model folder found" in str(result.exception)
