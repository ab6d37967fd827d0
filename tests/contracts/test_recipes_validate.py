"""Every shipped recipe validates, and the committed JSON Schema is the generated one."""

from __future__ import annotations

import json

import pytest

from edgesdk import settings
from edgesdk.recipe import json_schema, load_recipe_file

RECIPES = sorted((settings.REPO_ROOT / "recipes").glob("*.yaml"))


def test_recipes_shipped() -> None:
    names = {p.stem for p in RECIPES}
    assert {
        "yolo-fastest",
        "yolov5n",
        "yolox-nano",
        "retinaface-mnet",
        "yunet",
        "ultraface-rfb320",
        "centerface",
        "yolov8n",
    } <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates(path) -> None:
    recipe = load_recipe_file(path)
    assert recipe.name == path.stem
    json.dumps(recipe.resolved())


def test_schema_file_is_generated() -> None:
    committed = json.loads((settings.REPO_ROOT / "docs" / "recipe.schema.json").read_text())
    assert committed == json_schema(), "regenerate: edgesdk schema -o docs/recipe.schema.json"
