"""Bundles: what the host sends to a device.

A bundle is a folder holding ``manifest.json`` (the fully resolved recipe as plain JSON,
which the agent reads with the standard library) and ``files/<sha256>`` for every file it
names. Same inputs → byte-identical bundle: keys are sorted, no timestamps, no absolute paths.
The bundle id is the sha256 of ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.files import sha256_file
from edgesdk import __version__
from edgesdk.errors import ArtifactNotFound
from edgesdk.recipe import Recipe

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle: its role, digest and size (bytes)."""

    role: str
    sha256: str
    size: int
    name: str  # the original file name, for humans only

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "sha256": self.sha256, "size": self.size, "name": self.name}


@dataclass(frozen=True)
class Bundle:
    """A bundle on disk."""

    root: Path
    manifest: dict[str, Any]
    bundle_id: str

    @property
    def files(self) -> list[FileEntry]:
        return [FileEntry(**entry) for entry in self.manifest["files"]]

    def path_of(self, sha256: str) -> Path:
        return self.root / "files" / sha256

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Canonical encoding: sorted keys, 2-space indent, trailing newline."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def build_manifest(recipe: Recipe, entries: Iterable[FileEntry]) -> dict[str, Any]:
    """The manifest for ``recipe`` with ``entries`` (sorted by role, then digest)."""
    files = sorted(entries, key=lambda e: (e.role, e.sha256))
    return {
        "bundle_format": BUNDLE_FORMAT,
        "edgesdk_version": __version__,
        "recipe": recipe.resolved(),
        "files": [entry.to_json() for entry in files],
    }


def write_bundle(recipe: Recipe, files: Iterable[tuple[str, Path]], out_dir: Path) -> Bundle:
    """Write a bundle for ``recipe`` with ``files`` given as (role, path) pairs.

    The folder is built next to ``out_dir`` and swapped in atomically, so a failure never
    leaves a half-written bundle.

    Raises:
        ArtifactNotFound: a file does not exist.
    """
    entries: list[tuple[FileEntry, Path]] = []
    for role, path in files:
        if not path.is_file():
            raise ArtifactNotFound(f"bundle file {path} ({role}) does not exist")
        entries.append((FileEntry(role, sha256_file(path), path.stat().st_size, path.name), path))
    manifest = build_manifest(recipe, (entry for entry, _ in entries))
    data = manifest_bytes(manifest)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out_dir.parent))
    try:
        (staging / "files").mkdir()
        for entry, path in entries:
            target = staging / "files" / entry.sha256
            if not target.exists():
                shutil.copyfile(path, target)
        (staging / MANIFEST).write_bytes(data)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(out_dir, manifest, hashlib.sha256(data).hexdigest())


def read_bundle(root: Path) -> Bundle:
    """Open a bundle folder written by :func:`write_bundle`."""
    path = root / MANIFEST
    if not path.is_file():
        raise ArtifactNotFound(f"{root} is not a bundle (no {MANIFEST})")
    data = path.read_bytes()
    return Bundle(root, json.loads(data), hashlib.sha256(data).hexdigest())
