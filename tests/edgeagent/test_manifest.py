from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeagent.events import BadInput
from edgeagent.manifest import load_manifest


def _write(tmp_path: Path, data: object) -> str:
    (tmp_path / "manifest.json").write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(tmp_path)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no manifest.json"):
        load_manifest(str(tmp_path))


def test_not_json(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not valid JSON"):
        load_manifest(_write(tmp_path, "{nope"))


def test_future_format(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="bundle_format 99 is not supported"):
        load_manifest(_write(tmp_path, {"bundle_format": 99}))


def test_missing_field(tmp_path: Path) -> None:
    data = {
        "bundle_format": 1,
        "files": [],
        "recipe": {"name": "x", "input": {}, "preprocess": {}, "build": {}},
    }
    with pytest.raises(BadInput, match="recipe.postprocess"):
        load_manifest(_write(tmp_path, data))
