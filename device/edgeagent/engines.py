"""The device's engine cache: built engines keyed by a fingerprint of everything they depend on.

A TensorRT engine is tied to the model, the precision, the calibration, the TensorRT
version, the GPU, the DLA core and the workspace; an onnxruntime "engine" (an optimised
model) to the model and the onnxruntime version. The fingerprint holds them all; its key
is the sha256 of its canonical JSON. An engine is reused only on an exact fingerprint match.

Layout under ``root``::

    engines/<key>/engine-<sha256[:16]><suffix>   the engine (named by content)
    engines/<key>/engine.json                    sidecar: key, fingerprint, file, size, sha256,
                                                 provenance (the commit point of a store)
    active/<recipe>.json                         {"key": ..., "previous": ..., "activated": ...}

Every write is atomic (temp file in the same folder, fsync, ``os.replace``), so a build or
a store that fails at any point leaves the previously active engine active and whole.
Pure standard library, Python 3.8.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union

from edgeagent.files import atomic_write, sha256_file

__all__ = [
    "FINGERPRINT_KEYS",
    "ActiveEngine",
    "EngineCache",
    "EngineCacheError",
    "atomic_write",
    "fingerprint_key",
    "make_fingerprint",
]

FINGERPRINT_KEYS = (
    "model_sha256",
    "precision",
    "calibration_sha256",
    "backend",
    "backend_version",
    "gpu",
    "compute_capability",
    "dla_core",
    "workspace_mb",
)
"""The keys every fingerprint has (values are JSON scalars; None where not applicable)."""

SIDECAR = "engine.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class EngineCacheError(RuntimeError):
    """The cache cannot store or activate an engine (message says what and where)."""


class ActiveEngine(NamedTuple):
    """The engine a recipe runs with: its key, its file and its sidecar."""

    key: str
    path: Path
    sidecar: Dict[str, Any]


def make_fingerprint(
    *,
    model_sha256: str,
    precision: str,
    backend: str,
    backend_version: str,
    calibration_sha256: Optional[str] = None,
    gpu: Optional[str] = None,
    compute_capability: Optional[str] = None,
    dla_core: Optional[int] = None,
    workspace_mb: Optional[int] = None,
) -> Dict[str, Any]:
    """Build a fingerprint with every key of :data:`FINGERPRINT_KEYS`, checked.

    Args:
        model_sha256: sha256 (hex) of the ONNX model the engine is built from.
        precision: ``fp32``, ``fp16`` or ``int8``.
        backend: backend name (``trt`` or ``ort``).
        backend_version: TensorRT version (``"8.5.2.2"``) or onnxruntime version.
        calibration_sha256: sha256 of the calibration cache/image list, None without int8.
        gpu: GPU name (``"Orin"``), None for CPU backends.
        compute_capability: e.g. ``"8.7"``.
        dla_core: DLA core index, None for the GPU.
        workspace_mb: builder workspace limit in MiB.

    Raises:
        EngineCacheError: a malformed sha256 or an unknown precision.
    """
    for label, sha in (("model_sha256", model_sha256), ("calibration_sha256", calibration_sha256)):
        if sha is not None and not _SHA.match(sha):
            raise EngineCacheError(f"fingerprint {label} must be 64 lower-case hex digits, got {sha!r}")
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineCacheError(f"fingerprint precision must be fp32, fp16 or int8, got {precision!r}")
    return {
        "model_sha256": model_sha256,
        "precision": precision,
        "calibration_sha256": calibration_sha256,
        "backend": backend,
        "backend_version": backend_version,
        "gpu": gpu,
        "compute_capability": compute_capability,
        "dla_core": dla_core,
        "workspace_mb": workspace_mb,
    }


def _canonical(fingerprint: Mapping[str, Any]) -> str:
    missing = [k for k in FINGERPRINT_KEYS if k not in fingerprint]
    if missing:
        raise EngineCacheError(f"fingerprint is missing {missing}; build it with make_fingerprint()")
    return json.dumps(dict(fingerprint), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint_key(fingerprint: Mapping[str, Any]) -> str:
    """The cache key: sha256 (hex) of the fingerprint's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(_canonical(fingerprint).encode("ascii")).hexdigest()


def _json_bytes(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(obj), indent=2, sort_keys=True) + "\n").encode("utf-8")


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class EngineCache:
    """Engines on disk under ``root``, keyed by fingerprint, with a per-recipe active pointer.

    Args:
        root: the cache folder (created on first store).
    """

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)

    # -- paths
    def _engine_dir(self, key: str) -> Path:
        if not _KEY.match(key):
            raise EngineCacheError(f"engine key must be 64 lower-case hex digits, got {key!r}")
        return self.root / "engines" / key

    def _pointer(self, recipe_name: str) -> Path:
        if not _NAME.match(recipe_name):
            raise EngineCacheError(
                f"recipe name {recipe_name!r} cannot name an engine pointer; use letters, digits, . _ -"
            )
        return self.root / "active" / (recipe_name + ".json")

    def _entry(self, key: str, verify: bool) -> Optional[ActiveEngine]:
        """The stored engine for ``key`` if its sidecar and file are whole, else None."""
        folder = self._engine_dir(key)
        sidecar = _read_json(folder / SIDECAR)
        if sidecar is None or sidecar.get("key") != key:
            return None
        name = sidecar.get("file")
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            return None
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if size != sidecar.get("size"):
            return None
        if verify and sha256_file(path) != sidecar.get("sha256"):
            return None
        return ActiveEngine(key, path, sidecar)

    # -- public API
    def lookup(self, fingerprint: Mapping[str, Any], *, verify: bool = True) -> Optional[Path]:
        """The cached engine file for exactly this fingerprint, or None (a miss).

        A hit needs the sidecar's fingerprint to equal ``fingerprint`` (canonical JSON) and
        the engine file to have the recorded size (and sha256 when ``verify``).
        """
        key = fingerprint_key(fingerprint)
        entry = self._entry(key, verify)
        if entry is None or entry.sidecar.get("fingerprint") != json.loads(_canonical(fingerprint)):
            return None
        return entry.path

    def store(
        self,
        fingerprint: Mapping[str, Any],
        engine_bytes: Union[bytes, bytearray, memoryview],
        provenance: Mapping[str, Any],
        *,
        suffix: str = ".engine",
    ) -> Path:
        """Store an engine and its sidecar atomically; the sidecar write is the commit point.

        Args:
            fingerprint: from :func:`make_fingerprint`.
            engine_bytes: the serialised engine.
            provenance: at least ``recipe`` and ``build_seconds``; ``edgeagent_version`` and
                ``created`` (Unix seconds) are filled in when absent.
            suffix: engine file suffix (``.engine`` for TensorRT, ``.onnx`` for onnxruntime).

        Returns:
            The stored engine's path.

        Raises:
            EngineCacheError: empty engine, bad suffix or provenance.
            OSError: the disk write failed (nothing partial is left visible).
        """
        data = bytes(engine_bytes)
        if not data:
            raise EngineCacheError("refusing to cache an empty engine: the build produced no bytes")
        if not re.match(r"^\.[A-Za-z0-9]{1,16}$", suffix):
            raise EngineCacheError(f"engine suffix must look like '.engine', got {suffix!r}")
        if not isinstance(provenance.get("recipe"), str) or not _NAME.match(provenance["recipe"]):
            raise EngineCacheError("provenance must name the recipe ('recipe': '<name>')")
        key = fingerprint_key(fingerprint)
        folder = self._engine_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        name = f"engine-{digest[:16]}{suffix}"
        atomic_write(folder / name, data)
        from edgeagent import __version__

        record = {"edgeagent_version": __version__, "created": round(time.time(), 3)}
        record.update(provenance)
        sidecar = {
            "key": key,
            "fingerprint": json.loads(_canonical(fingerprint)),
            "file": name,
            "size": len(data),
            "sha256": digest,
            "provenance": record,
        }
        atomic_write(folder / SIDECAR, _json_bytes(sidecar))
        for stale in folder.iterdir():  # an earlier build of the same key, now superseded
            if stale.name not in (name, SIDECAR) and not stale.name.startswith("."):
                stale.unlink()
        return folder / name

    def activate(self, recipe_name: str, key: str) -> None:
        """Point ``recipe_name`` at the stored engine ``key`` (one atomic ``os.replace``).

        Raises:
            EngineCacheError: no whole engine is stored under ``key``.
        """
        if self._entry(key, verify=False) is None:
            raise EngineCacheError(
                f"no complete engine stored under key {key[:12]}…; store it before activating"
            )
        pointer = self._pointer(recipe_name)
        pointer.parent.mkdir(parents=True, exist_ok=True)
        previous = _read_json(pointer)
        record = {
            "key": key,
            "previous": previous.get("key") if previous else None,
            "activated": round(time.time(), 3),
        }
        atomic_write(pointer, _json_bytes(record))

    def active(self, recipe_name: str, *, verify: bool = False) -> Optional[ActiveEngine]:
        """The engine ``recipe_name`` runs with, or None (never activated, or its files are gone)."""
        pointer = _read_json(self._pointer(recipe_name))
        if pointer is None or not isinstance(pointer.get("key"), str) or not _KEY.match(pointer["key"]):
            return None
        return self._entry(pointer["key"], verify)

    def keys(self) -> List[str]:
        """Keys of every complete stored engine, newest first (by provenance ``created``)."""
        folder = self.root / "engines"
        if not folder.is_dir():
            return []
        entries = [self._entry(p.name, False) for p in folder.iterdir() if _KEY.match(p.name)]
        whole = [e for e in entries if e is not None]
        whole.sort(key=lambda e: float(e.sidecar.get("provenance", {}).get("created", 0.0)), reverse=True)
        return [e.key for e in whole]

    def prune(self, keep: int = 2) -> List[str]:
        """Delete old engines: keep every active one plus the ``keep`` newest per recipe.

        Also removes incomplete engine folders (no whole sidecar) and temp files left by
        interrupted writes.

        Returns:
            The keys (folder names) removed.
        """
        if keep < 0:
            raise EngineCacheError(f"prune keep must be >= 0, got {keep}")
        active = set()
        pointers = self.root / "active"
        if pointers.is_dir():
            for path in pointers.glob("*.json"):
                record = _read_json(path)
                if record and isinstance(record.get("key"), str):
                    active.add(record["key"])
        kept_per_recipe: Dict[str, int] = {}
        survivors = set()
        for key in self.keys():
            entry = self._entry(key, False)
            recipe = str(entry.sidecar.get("provenance", {}).get("recipe", "")) if entry else ""
            if key in active or kept_per_recipe.get(recipe, 0) < keep:
                survivors.add(key)
                if key not in active:
                    kept_per_recipe[recipe] = kept_per_recipe.get(recipe, 0) + 1
        removed = []
        engines = self.root / "engines"
        for folder in sorted(engines.iterdir()) if engines.is_dir() else []:
            if folder.name not in survivors and folder.name not in active:
                shutil.rmtree(str(folder), ignore_errors=True)
                removed.append(folder.name)
        for leftover in list(self.root.glob("engines/*/.*.tmp")) + list(self.root.glob("active/.*.tmp")):
            leftover.unlink()
        return removed
