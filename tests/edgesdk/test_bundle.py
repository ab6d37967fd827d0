"""Bundles are content-addressed and byte-identical for the same inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edgeagent.manifest import load_manifest
from edgesdk.bundle import read_bundle, write_bundle
from edgesdk.errors import ArtifactNotFound
from edgesdk.recipe import load_recipe


@pytest.fixture()
def files(tmp_path: Path) -> list[tuple[str, Path]]:
    model = tmp_path / "src" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"onnx bytes" * 100)
    img = tmp_path / "src" / "a b;$(x).jpg"
    img.write_bytes(b"\xff\xd8 fake jpeg")
    return [("model", model), ("calibration_image", img)]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_inputs_same_bytes(tmp_path: Path, files: list[tuple[str, Path]]) -> None:
    recipe = load_recipe("yolox-nano")
    a = write_bundle(recipe, files, tmp_path / "a")
    b = write_bundle(recipe, list(reversed(files)), tmp_path / "b")
    assert _tree(a.root) == _tree(b.root)
    assert a.bundle_id == b.bundle_id == hashlib.sha256((a.root / "manifest.json").read_bytes()).hexdigest()
    for entry in a.files:
        assert hashlib.sha256(a.path_of(entry.sha256).read_bytes()).hexdigest() == entry.sha256
    assert a.total_bytes == sum(p.stat().st_size for _, p in files)


def test_recipe_change_changes_id(tmp_path: Path, files: list[tuple[str, Path]]) -> None:
    recipe = load_recipe("yolox-nano")
    other = recipe.model_copy(update={"description": "changed"})
    assert (
        write_bundle(recipe, files, tmp_path / "a").bundle_id
        != write_bundle(other, files, tmp_path / "b").bundle_id
    )


def test_agent_reads_manifest(tmp_path: Path, files: list[tuple[str, Path]]) -> None:
    bundle = write_bundle(load_recipe("yolox-nano"), files, tmp_path / "b")
    manifest = load_manifest(str(bundle.root))
    assert manifest.name == "yolox-nano"
    assert manifest.input_shape == [1, 3, 416, 416]
    assert manifest.postprocess["decoder"] == "yolox"
    entry = manifest.model_entry()
    assert Path(manifest.file_path(entry)).read_bytes() == files[0][1].read_bytes()
    assert read_bundle(bundle.root).bundle_id == bundle.bundle_id


def test_missing_file_leaves_previous_bundle(tmp_path: Path, files: list[tuple[str, Path]]) -> None:
    recipe = load_recipe("yolox-nano")
    first = write_bundle(recipe, files, tmp_path / "b")
    before = _tree(first.root)
    with pytest.raises(ArtifactNotFound):
        write_bundle(recipe, [*files, ("model", tmp_path / "gone.onnx")], tmp_path / "b")
    assert _tree(first.root) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle-")]
