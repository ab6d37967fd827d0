"""Recipe loading: validation errors name the file, the key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgesdk.errors import ArtifactNotFound, RecipeError
from edgesdk.recipe import find_recipe, load_recipe, load_recipe_file, parse_recipe

MINIMAL = {
    "name": "tiny",
    "model": {"format": "onnx", "path": "tiny.onnx"},
    "input": {"shape": [1, 3, 64, 64]},
    "postprocess": {"decoder": "yolov5"},
    "fixes": ["cleanup"],
}


def _write(tmp_path: Path, data: object, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_minimal_recipe_fills_defaults() -> None:
    recipe = parse_recipe(MINIMAL)
    resolved = recipe.resolved()
    assert resolved["preprocess"]["resize"] == "letterbox"
    assert resolved["postprocess"]["iou_threshold"] == 0.45
    assert resolved["build"]["precision"] == "fp16"
    assert recipe.input.hw == (64, 64)


def test_unknown_key_names_file_and_path(tmp_path: Path) -> None:
    data = {**MINIMAL, "preprocess": {"colour": "rgb"}}
    path = _write(tmp_path, data)
    with pytest.raises(RecipeError) as err:
        load_recipe_file(path)
    msg = str(err.value)
    assert str(path) in msg and "preprocess.colour" in msg and "unknown key" in msg
    assert "did you mean 'color'?" in msg  # a near miss gets the key it probably meant
    with pytest.raises(RecipeError) as err:
        parse_recipe({**MINIMAL, "build": {"precison": "int8"}, "zzz": 1})
    assert "build.precison: unknown key (did you mean 'precision'?" in str(err.value)
    assert "zzz: unknown key (check the spelling" in str(err.value)  # no guess for nonsense


def test_wrong_literal_lists_allowed_values() -> None:
    data = {**MINIMAL, "preprocess": {"resize": "squash"}}
    with pytest.raises(RecipeError, match="letterbox.*stretch.*top-left-pad"):
        parse_recipe(data)


def test_unknown_decoder_lists_decoders() -> None:
    data = {**MINIMAL, "postprocess": {"decoder": "yolov99"}}
    with pytest.raises(RecipeError, match="yolox"):
        parse_recipe(data)


def test_threshold_out_of_range() -> None:
    data = {**MINIMAL, "postprocess": {"decoder": "yolov5", "iou_threshold": 1.5}}
    with pytest.raises(RecipeError, match="postprocess.yolov5.iou_threshold"):
        parse_recipe(data)


def test_unknown_fix_lists_known() -> None:
    data = {**MINIMAL, "fixes": ["cleanup", "make-it-fast"]}
    with pytest.raises(RecipeError, match="unknown fix 'make-it-fast'.*cleanup"):
        parse_recipe(data)


def test_fix_with_params() -> None:
    recipe = parse_recipe({**MINIMAL, "fixes": ["cleanup", {"cleanup": {}}]})
    assert recipe.fix_list() == [("cleanup", {}), ("cleanup", {})]


def test_dynamic_shape_rejected() -> None:
    with pytest.raises(RecipeError, match="positive"):
        parse_recipe({**MINIMAL, "input": {"shape": [1, 3, -1, 64]}})


def test_face_task_with_coco_classes_rejected() -> None:
    with pytest.raises(RecipeError, match="classes: face"):
        parse_recipe({**MINIMAL, "task": "face"})


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe_file(_write(tmp_path, "- a\n- b\n"))


def test_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe_file(_write(tmp_path, "name: [unclosed\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound):
        load_recipe(str(tmp_path / "nope.yaml"))


def test_find_by_name_and_unknown_name() -> None:
    assert find_recipe("yolox-nano").name == "yolox-nano.yaml"
    with pytest.raises(RecipeError) as err:
        find_recipe("yolox-giant")
    assert "yolox-nano" in (err.value.hint or "")


def test_recipe_dir_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, {**MINIMAL, "name": "yolox-nano", "description": "mine"}, "yolox-nano.yaml")
    monkeypatch.setenv("EDGESDK_RECIPE_DIR", str(tmp_path))
    assert load_recipe("yolox-nano").description == "mine"
