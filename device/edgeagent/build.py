"""``edgeagent build``: turn a deployed bundle's ONNX model into an engine, cached by fingerprint.

A cached engine is reused only on an exact fingerprint match. A failed build leaves the
previously active engine active (the cache's pointer is switched only after a whole store).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

from edgeagent.events import BadInput, BuildFailed, Emitter, MissingDependency
from edgeagent.manifest import Manifest

PRECISIONS = ("fp32", "fp16", "int8")


def agent_home(explicit: Optional[str] = None) -> str:
    """The agent's working folder: ``--home``, else ``EDGEAGENT_HOME``, else ``~/.edgeagent``."""
    return os.path.abspath(os.path.expanduser(explicit or os.environ.get("EDGEAGENT_HOME") or "~/.edgeagent"))


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def choose_backend(requested: str) -> str:
    """``auto`` → ``trt`` where TensorRT imports, else ``ort``; otherwise check the request."""
    from edgeagent.info import machine_info

    available = machine_info()["backends"]
    if requested == "auto":
        if not available:
            raise MissingDependency(
                "no inference backend on this machine",
                "install onnxruntime (pip install onnxruntime), or TensorRT + pycuda from JetPack on a Jetson",
            )
        return "trt" if "trt" in available else "ort"
    if requested not in available:
        raise MissingDependency(
            "backend {!r} is not available here (available: {})".format(
                requested, ", ".join(available) or "none"
            ),
            "on a Jetson, use JetPack's Python with tensorrt and pycuda; elsewhere use --backend ort",
        )
    return requested


def _ort_build(
    model_path: str, options: Dict[str, Any], manifest: Manifest, out: Emitter
) -> Tuple[bytes, str, Dict]:
    from edgeagent.backends.ort import build_ort, ort_version

    requested = options["precision"]
    if requested != "fp32":
        out.log(
            f"onnxruntime on the CPU has no {requested} engine: the model runs in its own precision "
            "(fp32, or int8 for a Q/DQ model); the result records effective_precision",
            level="warning",
        )
    return build_ort(model_path, options), ".onnx", {"backend_version": ort_version() or "unknown"}


def _trt_build(
    model_path: str, options: Dict[str, Any], manifest: Manifest, out: Emitter
) -> Tuple[bytes, str, Dict]:
    from edgeagent.backends import trt as trt_backend

    engine = trt_backend.build_engine(model_path, options, calibration=None, log=lambda line: out.log(line))
    return bytes(engine), ".engine", {"backend_version": trt_backend.trt_version()}


_BUILDERS: Dict[str, Callable[[str, Dict[str, Any], Manifest, Emitter], Tuple[bytes, str, Dict]]] = {
    "ort": _ort_build,
    "trt": _trt_build,
}


def build(
    manifest: Manifest, home: str, *, backend: str, precision: Optional[str], out: Emitter
) -> Dict[str, Any]:
    """Build (or reuse) the engine for ``manifest`` and make it the recipe's active engine.

    Returns:
        The ``result`` data: engine key and path, backend, precision, cached flag, seconds.
    """
    from edgeagent.engines import EngineCache, EngineCacheError, fingerprint_key, make_fingerprint

    options = manifest.build
    if precision is not None:
        options["precision"] = precision
    if options.get("precision") not in PRECISIONS:
        raise BadInput(
            "precision must be one of {}, got {!r}".format(", ".join(PRECISIONS), options.get("precision"))
        )
    entry = manifest.model_entry()
    model_path = manifest.file_path(entry)
    if not os.path.isfile(model_path) or sha256_file(model_path) != entry["sha256"]:
        raise BadInput(f"model file {model_path} is missing or corrupt", "deploy the recipe again")
    name = backend
    started = time.monotonic()
    version = _backend_version(name)
    fingerprint = make_fingerprint(
        model_sha256=entry["sha256"],
        precision=options["precision"],
        backend=name,
        backend_version=version,
        calibration_sha256=None,
        dla_core=options.get("dla_core"),
        workspace_mb=options.get("workspace_mb"),
    )
    key = fingerprint_key(fingerprint)
    cache = EngineCache(os.path.join(home, "engines"))
    path = cache.lookup(fingerprint)
    cached = path is not None
    if path is None:
        out.progress("build", 0, 1, force=True)
        try:
            data, suffix, _extra = _BUILDERS[name](model_path, options, manifest, out)
        except (BadInput, MissingDependency):
            raise
        except Exception as err:  # backend errors carry the lines that matter
            raise BuildFailed(f"{name} engine build failed for {manifest.name}: {err}") from err
        seconds = time.monotonic() - started
        try:
            path = cache.store(
                fingerprint,
                data,
                {"recipe": manifest.name, "build_seconds": round(seconds, 3)},
                suffix=suffix,
            )
        except (EngineCacheError, OSError) as err:
            raise BuildFailed(f"cannot store the engine under {home}: {err}") from err
        out.progress("build", 1, 1, force=True)
    cache.activate(manifest.name, key)
    effective = options["precision"] if name == "trt" else "fp32"
    return {
        "recipe": manifest.name,
        "backend": name,
        "backend_version": version,
        "precision": options["precision"],
        "effective_precision": effective,
        "engine": key,
        "engine_path": str(path),
        "cached": cached,
        "seconds": round(time.monotonic() - started, 3),
    }


def _backend_version(name: str) -> str:
    if name == "ort":
        from edgeagent.backends.ort import ort_version

        return ort_version() or "unknown"
    from edgeagent.backends import trt as trt_backend

    return str(trt_backend.trt_version())
