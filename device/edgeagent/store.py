"""The device's deployment store: content-addressed files, bundles, a lock, atomic activation.

Layout under the agent home (``~/.edgeagent``)::

    store/<sha256>                    every pushed file, named by its content
    incoming/<sha256>.<token>.part    uploads in flight (verified, then renamed into store/)
    bundles/<bundle_id>/manifest.json + files/<sha256> (hard links into store/)
    deployments/<recipe>.json         {"current": id, "history": [older ids…]}, replaced atomically
    engines/                          the engine cache (see :mod:`edgeagent.engines`)
    lock/                             a deploy in progress (mkdir is atomic); owner.json inside

Nothing here is ever modified in place: a push interrupted at any byte leaves only
``incoming/`` debris, and the previous deployment stays active.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
from typing import Any, Dict, List, Optional

from edgeagent.events import AgentError, BadInput
from edgeagent.files import atomic_write, sha256_file

_SHA = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
KEEP_HISTORY = 5
STALE_LOCK_SECONDS = 30 * 60


class LockBusy(AgentError):
    exit_code = 5
    kind = "LockBusy"


def _check_sha(value: str) -> str:
    if not _SHA.match(value):
        raise BadInput(f"not a sha256: {value!r}")
    return value


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise BadInput(f"not a recipe name: {value!r}")
    return value


class Store:
    """Operations on one agent home."""

    def __init__(self, home: str) -> None:
        self.home = home

    def path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)

    def ensure(self) -> None:
        for sub in ("store", "incoming", "bundles", "deployments", "engines"):
            os.makedirs(self.path(sub), exist_ok=True)

    # -- files
    def missing(self, digests: List[str]) -> List[str]:
        """The digests of ``digests`` not yet in the store (in order)."""
        return [d for d in digests if not os.path.isfile(self.path("store", _check_sha(d)))]

    def commit(self, incoming_name: str, digest: str) -> Dict[str, Any]:
        """Verify ``incoming/<incoming_name>`` against ``digest`` and move it into the store.

        Raises:
            BadInput: the upload is missing or its content does not match (it is deleted).
        """
        _check_sha(digest)
        if "/" in incoming_name or incoming_name.startswith("."):
            raise BadInput(f"bad upload name {incoming_name!r}")
        src = self.path("incoming", incoming_name)
        if not os.path.isfile(src):
            raise BadInput(f"upload {src} is missing", "push again")
        actual = sha256_file(src)
        if actual != digest:
            os.unlink(src)
            raise BadInput(f"upload {src} has sha256 {actual}, expected {digest}", "push again")
        with open(src, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(src, self.path("store", digest))
        return {"sha256": digest, "size": os.path.getsize(self.path("store", digest))}

    def clean_incoming(self, older_than: float = 0.0) -> int:
        """Delete uploads left by interrupted pushes; returns how many."""
        count = 0
        folder = self.path("incoming")
        now = time.time()
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            full = os.path.join(folder, name)
            if now - os.path.getmtime(full) >= older_than:
                os.unlink(full)
                count += 1
        return count

    # -- bundles
    def install_bundle(self, bundle_id: str, manifest_sha: str) -> str:
        """Create ``bundles/<bundle_id>`` from the stored manifest and its files (atomic).

        The manifest itself was pushed into the store; its sha256 is the bundle id.
        """
        _check_sha(bundle_id)
        if _check_sha(manifest_sha) != bundle_id:
            raise BadInput("bundle id must be the manifest's sha256")
        target = self.path("bundles", bundle_id)
        if os.path.isfile(os.path.join(target, "manifest.json")):
            return target
        manifest_path = self.path("store", manifest_sha)
        with open(manifest_path, "rb") as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
        staging = tempfile.mkdtemp(prefix=".bundle-", dir=self.path("bundles"))
        try:
            os.mkdir(os.path.join(staging, "files"))
            for entry in manifest.get("files", []):
                digest = _check_sha(entry["sha256"])
                src = self.path("store", digest)
                if not os.path.isfile(src):
                    raise BadInput(
                        "bundle file {} ({}) is not in the store".format(digest, entry.get("role"))
                    )
                dst = os.path.join(staging, "files", digest)
                if not os.path.exists(dst):
                    os.link(src, dst)
            os.link(manifest_path, os.path.join(staging, "manifest.json"))
            if os.path.isdir(target):  # a half-made bundle from an older agent: replace it
                shutil.rmtree(target)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    # -- deployments
    def deployment(self, recipe: str, *, with_time: bool = False) -> Dict[str, Any]:
        """``{"current": id or None, "history": [...]}`` for ``recipe`` (``with_time``: and
        ``"activated"``, seconds since the epoch or None)."""
        path = self.path("deployments", _check_name(recipe) + ".json")
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read().decode("utf-8"))
        except FileNotFoundError:
            data = {}
        state = {"current": data.get("current"), "history": list(data.get("history", []))}
        if with_time:
            state["activated"] = data.get("activated")
        return state

    def deployed(self) -> List[str]:
        """Sorted names of the recipes with a current deployment here."""
        folder = self.path("deployments")
        files = os.listdir(folder) if os.path.isdir(folder) else []
        names = [n[: -len(".json")] for n in files if n.endswith(".json") and _NAME.match(n[: -len(".json")])]
        return sorted(n for n in names if self.deployment(n)["current"])

    def activate(self, recipe: str, bundle_id: str, history: Optional[List[str]] = None) -> Dict[str, Any]:
        """Make ``bundle_id`` the recipe's current deployment (one atomic replace).

        ``history``: the earlier deployments to record, newest first (e.g. the ones a benchmark
        found, so its own deploys do not become what ``rollback`` goes back to); default: the
        current one goes on top of the existing history.
        """
        _check_sha(bundle_id)
        if not os.path.isfile(self.path("bundles", bundle_id, "manifest.json")):
            raise BadInput(f"bundle {bundle_id[:12]} is not installed")
        if history is None:
            state = self.deployment(recipe)
            history = [state["current"]] + state["history"]
        else:
            history = [
                b for b in history if os.path.isfile(self.path("bundles", _check_sha(b), "manifest.json"))
            ]
        history = [b for b in history if b and b != bundle_id][:KEEP_HISTORY]
        record = {"current": bundle_id, "history": history, "activated": round(time.time(), 3)}
        atomic_write(self.path("deployments", recipe + ".json"), json.dumps(record, sort_keys=True).encode())
        return record

    def rollback(self, recipe: str) -> Dict[str, Any]:
        """Re-activate the previous deployment of ``recipe``."""
        state = self.deployment(recipe)
        if not state["history"]:
            raise BadInput(f"{recipe} has no earlier deployment to roll back to")
        previous = state["history"][0]
        rest = [b for b in state["history"][1:] if b != previous]
        record = {"current": previous, "history": ([state["current"]] if state["current"] else []) + rest}
        record["history"] = record["history"][:KEEP_HISTORY]
        record["activated"] = round(time.time(), 3)
        atomic_write(self.path("deployments", recipe + ".json"), json.dumps(record, sort_keys=True).encode())
        return record

    # -- lock
    def lock(self, owner: str, force: bool = False) -> Dict[str, Any]:
        """Take the deploy lock (``mkdir`` is atomic); a lock older than 30 min is stale.

        Raises:
            LockBusy: another deploy holds it; names the owner and its age.
        """
        folder = self.path("lock")
        info = {
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": round(time.time(), 3),
        }
        for _ in range(2):
            try:
                os.mkdir(folder)
            except FileExistsError:
                held = self._lock_info()
                age = time.time() - float(held.get("since", 0) or 0)
                if force or age > STALE_LOCK_SECONDS:
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                raise LockBusy(
                    "another deploy holds the lock on this device ({}, {:.0f} s ago)".format(
                        held.get("owner", "unknown"), age
                    ),
                    "wait for it to finish, or pass --force-unlock if it died",
                ) from None
            atomic_write(os.path.join(folder, "owner.json"), json.dumps(info).encode())
            return info
        raise LockBusy(f"could not take the deploy lock in {folder}")

    def _lock_info(self) -> Dict[str, Any]:
        try:
            with open(self.path("lock", "owner.json"), "rb") as fh:
                data = json.loads(fh.read().decode("utf-8"))
                return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def lock_owner(self) -> Optional[str]:
        """Who holds the deploy lock, or None when it is free."""
        if not os.path.isdir(self.path("lock")):
            return None
        return str(self._lock_info().get("owner", "unknown"))

    def unlock(self, owner: Optional[str] = None) -> bool:
        """Release the lock (only our own when ``owner`` is given); True if released."""
        folder = self.path("lock")
        if not os.path.isdir(folder):
            return False
        if owner is not None and self._lock_info().get("owner") not in (owner, None):
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True
