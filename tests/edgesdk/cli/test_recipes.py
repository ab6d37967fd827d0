"""`edgesdk recipes`: which recipes exist and whether their model files are where edgesdk looks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesdk.cli.app import app


def test_recipes_say_which_model_files_are_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESDK_MODEL_DIR", str(tmp_path))  # an empty model folder
    monkeypatch.setenv("COLUMNS", "100")
    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    assert "yolo-fastest" in result.stdout and "missing" in result.stdout and "│ yes" not in result.stdout
    assert f"looked up under {tmp_path}" in " ".join(result.stderr.split())
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["recipes", "--json"]).stdout)}
    assert rows["yolo-fastest"]["model"] == str(tmp_path / "yolo_fastest_1.1_coco" / "yolo-fastest-1.1.cfg")


def test_recipes_find_the_shared_models(model_dir_env: Path) -> None:
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["recipes", "--json"]).stdout)}
    assert (
        rows["yunet"]["model_found"] == "yes" and rows["yolo-fastest"]["model_found"] == "yes"
    )  # darknet cfg
