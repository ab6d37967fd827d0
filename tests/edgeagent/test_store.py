"""The device store: verified commits, atomic bundles and activation, rollback, the deploy lock."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from edgeagent.events import BadInput
from edgeagent.store import STALE_LOCK_SECONDS, LockBusy, Store


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "home"))
    s.ensure()
    return s


def _upload(store: Store, data: bytes, name: str | None = None) -> str:
    digest = _sha(data)
    part = name or f"{digest}.x.part"
    Path(store.path("incoming", part)).write_bytes(data)
    store.commit(part, digest)
    return digest


def _bundle(store: Store, recipe: str, payload: bytes) -> str:
    model = _upload(store, payload)
    manifest = json.dumps(
        {"bundle_format": 1, "recipe": {"name": recipe}, "files": [{"role": "model", "sha256": model}]}
    )
    bundle_id = _upload(store, manifest.encode())
    store.install_bundle(bundle_id, bundle_id)
    return bundle_id


def test_commit_verifies(store: Store) -> None:
    data = b"model bytes"
    assert store.missing([_sha(data)]) == [_sha(data)]
    _upload(store, data)
    assert store.missing([_sha(data)]) == []
    Path(store.path("incoming", "bad.part")).write_bytes(b"corrupted in flight")
    with pytest.raises(BadInput, match="expected"):
        store.commit("bad.part", _sha(data + b"!"))
    assert not os.path.exists(store.path("incoming", "bad.part"))
    with pytest.raises(BadInput):
        store.commit("../escape", _sha(data))


def test_install_links_files(store: Store) -> None:
    bundle_id = _bundle(store, "m", b"weights")
    files = os.listdir(store.path("bundles", bundle_id, "files"))
    assert files == [_sha(b"weights")]
    assert Path(store.path("bundles", bundle_id, "files", files[0])).read_bytes() == b"weights"
    assert store.install_bundle(bundle_id, bundle_id) == store.path("bundles", bundle_id)  # idempotent


def test_install_refuses_missing_file(store: Store) -> None:
    manifest = json.dumps({"files": [{"role": "model", "sha256": "a" * 64}]}).encode()
    bundle_id = _upload(store, manifest)
    with pytest.raises(BadInput, match="not in the store"):
        store.install_bundle(bundle_id, bundle_id)
    assert not os.path.exists(store.path("bundles", bundle_id))


def test_activate_history_and_rollback(store: Store) -> None:
    first, second, third = (_bundle(store, "m", p) for p in (b"1", b"2", b"3"))
    store.activate("m", first)
    store.activate("m", second)
    store.activate("m", third)
    assert store.deployment("m") == {"current": third, "history": [second, first]}
    store.rollback("m")
    assert store.deployment("m")["current"] == second
    assert store.deployment("m")["history"][0] == third
    with pytest.raises(BadInput, match="not installed"):
        store.activate("m", "f" * 64)
    with pytest.raises(BadInput, match="no earlier"):
        store.rollback("never-deployed")


def test_activate_with_an_explicit_history(store: Store) -> None:
    first, second, third = (_bundle(store, "m", p) for p in (b"1", b"2", b"3"))
    store.activate("m", first)
    store.activate("m", third)
    gone = "e" * 64  # not installed: left out of the recorded history
    store.activate("m", second, history=[first, gone, second])  # a benchmark putting things back
    assert store.deployment("m") == {"current": second, "history": [first]}
    store.activate("m", first, history=[])
    assert store.deployment("m") == {"current": first, "history": []}


def test_deployed_lists_the_recipes_with_a_current_deployment(store: Store) -> None:
    assert store.deployed() == []
    store.activate("yolo", _bundle(store, "yolo", b"1"))
    store.activate("face", _bundle(store, "face", b"2"))
    Path(store.path("deployments", "notes.txt")).write_text("not a deployment")
    assert store.deployed() == ["face", "yolo"]
    from edgeagent.runner import load_deployment

    with pytest.raises(
        BadInput, match=r"yolov5nn is not deployed on this device \(deployed here: face, yolo\)"
    ):
        load_deployment(store.home, "yolov5nn")


def test_lock(store: Store) -> None:
    store.lock("host-a:1")
    with pytest.raises(LockBusy, match="host-a:1"):
        store.lock("host-b:2")
    assert store.unlock("host-b:2") is False  # not ours
    store.lock("host-b:2", force=True)
    assert store.unlock("host-b:2") is True
    store.lock("host-c:3")
    owner = Path(store.path("lock", "owner.json"))
    info = json.loads(owner.read_text())
    info["since"] = time.time() - STALE_LOCK_SECONDS - 1
    owner.write_text(json.dumps(info))
    assert store.lock("host-d:4")["owner"] == "host-d:4"  # a stale lock is broken


def test_clean_incoming(store: Store) -> None:
    Path(store.path("incoming", "a.part")).write_bytes(b"half")
    assert store.clean_incoming() == 1
    assert os.listdir(store.path("incoming")) == []
