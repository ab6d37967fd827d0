"""The engine cache: exact-match lookup, atomic store and activation, prune."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

import edgeagent
from edgeagent.engines import (
    FINGERPRINT_KEYS,
    EngineCache,
    EngineCacheError,
    fingerprint_key,
    make_fingerprint,
)

MODEL = hashlib.sha256(b"model").hexdigest()
CALIB = hashlib.sha256(b"calibration").hexdigest()


def _fp(**changes: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = dict(
        model_sha256=MODEL,
        precision="int8",
        calibration_sha256=CALIB,
        backend="trt",
        backend_version="8.5.2.2",
        gpu="Orin",
        compute_capability="8.7",
        dla_core=None,
        workspace_mb=1024,
    )
    base.update(changes)
    return make_fingerprint(**base)


def _store(cache: EngineCache, fp: Dict[str, Any], data: bytes, recipe: str = "yolov5n") -> Path:
    return cache.store(fp, data, {"recipe": recipe, "build_seconds": 12.5})


def test_key_is_sha256_of_canonical_json() -> None:
    fp = _fp()
    canonical = json.dumps(fp, sort_keys=True, separators=(",", ":"))
    assert fingerprint_key(fp) == hashlib.sha256(canonical.encode()).hexdigest()
    assert fingerprint_key(dict(reversed(list(fp.items())))) == fingerprint_key(fp)  # order-free
    assert set(fp) == set(FINGERPRINT_KEYS)


@pytest.mark.parametrize(
    "change",
    [
        dict(model_sha256=CALIB),
        dict(precision="fp16"),
        dict(calibration_sha256=None),
        dict(backend_version="8.6.2.3"),
        dict(gpu="Xavier"),
        dict(compute_capability="7.2"),
        dict(dla_core=0),
        dict(workspace_mb=2048),
        dict(backend="ort"),
    ],
)
def test_any_fingerprint_change_is_a_miss(tmp_path: Path, change: Dict[str, Any]) -> None:
    cache = EngineCache(tmp_path)
    path = _store(cache, _fp(), b"ENGINE")
    assert cache.lookup(_fp()) == path and path.read_bytes() == b"ENGINE"
    assert fingerprint_key(_fp(**change)) != fingerprint_key(_fp())
    assert cache.lookup(_fp(**change)) is None


def test_sidecar_records_fingerprint_and_provenance(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    path = _store(cache, _fp(), b"ENGINE-BYTES")
    sidecar = json.loads((path.parent / "engine.json").read_text())
    assert sidecar["fingerprint"] == _fp()
    assert sidecar["key"] == fingerprint_key(_fp()) == path.parent.name
    assert sidecar["sha256"] == hashlib.sha256(b"ENGINE-BYTES").hexdigest() and sidecar["size"] == 12
    prov = sidecar["provenance"]
    assert prov["recipe"] == "yolov5n" and prov["build_seconds"] == 12.5
    assert prov["edgeagent_version"] == edgeagent.__version__ and prov["created"] > 1.7e9


def test_sidecar_that_disagrees_is_a_miss(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    path = _store(cache, _fp(), b"ENGINE")
    sidecar_path = path.parent / "engine.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["fingerprint"]["precision"] = "fp16"  # e.g. a hand-copied folder
    sidecar_path.write_text(json.dumps(sidecar))
    assert cache.lookup(_fp()) is None


def test_truncated_or_corrupt_engine_is_a_miss(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    path = _store(cache, _fp(), b"ENGINE-0123")
    path.write_bytes(b"ENGINE-0124")  # same size, other bytes
    assert cache.lookup(_fp()) is None
    assert cache.lookup(_fp(), verify=False) == path
    path.write_bytes(b"ENG")
    assert cache.lookup(_fp(), verify=False) is None
    (path.parent / "engine.json").write_text("{not json")
    assert cache.lookup(_fp()) is None


def test_activate_switches_and_remembers_previous(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    assert cache.active("yolov5n") is None
    a, b = _fp(), _fp(precision="fp16")
    _store(cache, a, b"A")
    _store(cache, b, b"B")
    cache.activate("yolov5n", fingerprint_key(a))
    cache.activate("yolov5n", fingerprint_key(b))
    entry = cache.active("yolov5n")
    assert entry is not None and entry.key == fingerprint_key(b) and entry.path.read_bytes() == b"B"
    pointer = json.loads((tmp_path / "active" / "yolov5n.json").read_text())
    assert pointer["previous"] == fingerprint_key(a)
    assert cache.active("other") is None


def test_activate_refuses_missing_engine_and_bad_names(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    with pytest.raises(EngineCacheError, match="store it before"):
        cache.activate("yolov5n", "0" * 64)
    key = fingerprint_key(_fp())
    _store(cache, _fp(), b"A")
    for bad in ("../etc", "a/b", ".hidden", "", "x" * 200):
        with pytest.raises(EngineCacheError):
            cache.activate(bad, key)
    with pytest.raises(EngineCacheError):
        cache.activate("yolov5n", "../" + key)


def test_failed_store_leaves_previous_engine_active(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = EngineCache(tmp_path)
    old = _fp()
    _store(cache, old, b"OLD")
    cache.activate("yolov5n", fingerprint_key(old))
    new = _fp(precision="fp16")

    real_replace = os.replace

    def replace_fails_on_sidecar(src: str, dst: str) -> None:
        if dst.endswith("engine.json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_fails_on_sidecar)
    with pytest.raises(OSError, match="No space"):
        _store(cache, new, b"NEW")
    monkeypatch.setattr(os, "replace", real_replace)

    assert cache.lookup(new) is None  # the half-stored engine is invisible
    entry = cache.active("yolov5n")
    assert entry is not None and entry.key == fingerprint_key(old) and entry.path.read_bytes() == b"OLD"
    leftovers = [p.name for p in (tmp_path / "engines" / fingerprint_key(new)).iterdir()]
    assert not any(name.endswith(".tmp") for name in leftovers)  # temp files cleaned on failure
    assert fingerprint_key(new) in cache.prune(keep=5)  # the orphan folder goes on prune
    assert cache.active("yolov5n") is not None


def test_failed_rewrite_of_same_key_keeps_old_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = EngineCache(tmp_path)
    _store(cache, _fp(), b"FIRST")
    cache.activate("yolov5n", fingerprint_key(_fp()))
    real_fsync = os.fsync

    def fsync_fails_on_sidecar(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".engine.json."):
            raise OSError(5, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_on_sidecar)
    with pytest.raises(OSError, match="I/O"):
        _store(cache, _fp(), b"SECOND")
    monkeypatch.setattr(os, "fsync", real_fsync)
    entry = cache.active("yolov5n", verify=True)
    assert entry is not None and entry.path.read_bytes() == b"FIRST"
    assert cache.lookup(_fp()) == entry.path
    # A successful rebuild of the same key replaces it and drops the old file.
    path = _store(cache, _fp(), b"SECOND")
    assert cache.lookup(_fp()) == path and path.read_bytes() == b"SECOND"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "engine.json"])


def test_prune_keeps_active_and_newest_per_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = EngineCache(tmp_path)
    clock = iter(range(1_800_000_000, 1_800_000_100))
    monkeypatch.setattr("edgeagent.engines.time.time", lambda: float(next(clock)))
    fps = [_fp(workspace_mb=256 * (i + 1)) for i in range(4)]
    for fp in fps:
        _store(cache, fp, b"E" + bytes([len(fp)]))
    other = _fp(model_sha256=CALIB)
    _store(cache, other, b"OTHER", recipe="retinaface")
    cache.activate("yolov5n", fingerprint_key(fps[0]))  # the oldest is active
    removed = cache.prune(keep=1)
    assert sorted(removed) == sorted(fingerprint_key(fp) for fp in fps[1:3])
    assert cache.lookup(fps[0]) and cache.lookup(fps[3]) and cache.lookup(other)
    assert cache.keys()[0] == fingerprint_key(other)
    assert cache.prune(keep=0) == sorted([fingerprint_key(fps[3]), fingerprint_key(other)])
    assert cache.active("yolov5n") is not None


def test_store_rejects_bad_input(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    with pytest.raises(EngineCacheError, match="empty"):
        cache.store(_fp(), b"", {"recipe": "x"})
    with pytest.raises(EngineCacheError, match="recipe"):
        cache.store(_fp(), b"E", {})
    with pytest.raises(EngineCacheError, match="suffix"):
        cache.store(_fp(), b"E", {"recipe": "x"}, suffix="/../x")
    with pytest.raises(EngineCacheError, match="missing"):
        fingerprint_key({"precision": "fp16"})


@pytest.mark.parametrize(
    "bad", [dict(model_sha256="abc"), dict(calibration_sha256="X" * 64), dict(precision="int4")]
)
def test_make_fingerprint_validates(bad: Dict[str, Any]) -> None:
    with pytest.raises(EngineCacheError):
        _fp(**bad)


def test_ort_engines_use_their_suffix(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    fp = _fp(
        backend="ort", backend_version="1.32.0", gpu=None, compute_capability=None, calibration_sha256=None
    )
    path = cache.store(fp, b"onnx", {"recipe": "yolov5n"}, suffix=".onnx")
    assert path.suffix == ".onnx" and cache.lookup(fp) == path
