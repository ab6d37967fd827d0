"""``edgeagent build``: turn a deployed bundle's ONNX model into an engine, cached by fingerprint.

A cached engine is reused only on an exact fingerprint match. A failed build leaves the
previously active engine active (the cache's pointer is switched only after a whole store).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Callable, Dict, Optional

from edgeagent.events import BadInput, BuildFailed, Emitter, MissingDependency
from edgeagent.files import sha256_file
from edgeagent.manifest import Manifest

PRECISIONS = ("fp32", "fp16", "int8")


def agent_home(explicit: Optional[str] = None) -> str:
    """The agent's working folder: ``--home``, else ``EDGEAGENT_HOME``, else ``~/.edgeagent``."""
    return os.path.abspath(os.path.expanduser(explicit or os.environ.get("EDGEAGENT_HOME") or "~/.edgeagent"))


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


class BuildJob:
    """What one backend will build: the model file, the fingerprint, and how to build it."""

    def __init__(
        self,
        model_path: str,
        fingerprint: Dict[str, Any],
        run: Callable[[], bytes],
        suffix: str,
        effective_precision: str,
    ) -> None:
        self.model_path = model_path
        self.fingerprint = fingerprint
        self.run = run
        self.suffix = suffix
        self.effective_precision = effective_precision


def calibration_digest(manifest: Manifest) -> Optional[str]:
    """sha256 naming the calibration inputs: the host cache if any, else the sorted image digests."""
    caches = manifest.files("calibration_cache")
    if caches:
        return str(caches[0]["sha256"])
    images = sorted(entry["sha256"] for entry in manifest.files("calibration_image"))
    if not images:
        return None
    return hashlib.sha256("\n".join(images).encode("ascii")).hexdigest()


def _ort_job(manifest: Manifest, options: Dict[str, Any], home: str, out: Emitter) -> BuildJob:
    from edgeagent.backends.ort import build_ort, ort_version
    from edgeagent.engines import make_fingerprint

    entry = manifest.model_entry()
    requested = options["precision"]
    effective = "fp32"
    qdq = manifest.files("qdq_model")
    if requested == "int8" and qdq:
        entry, effective = qdq[0], "int8"  # explicit quantization: onnxruntime runs the Q/DQ model in int8
    elif requested != "fp32":
        how = (
            f" (for int8 here: `edgesdk calibrate {manifest.name} --images DIR -o OUT`, then deploy with "
            "`--calibration OUT`)"
            if requested == "int8"
            else ""
        )
        out.log(
            "onnxruntime on the CPU has no {} engine{}: the model runs in fp32{}".format(
                requested, " without a Q/DQ model in the bundle" if requested == "int8" else "", how
            ),
            level="warning",
        )
    path = _verified(manifest, entry)
    fingerprint = make_fingerprint(
        model_sha256=entry["sha256"],
        precision=requested,
        backend="ort",
        backend_version=ort_version() or "unknown",
        calibration_sha256=entry["sha256"] if effective == "int8" else None,
    )
    return BuildJob(path, fingerprint, lambda: build_ort(path, options), ".onnx", effective)


def _trt_job(manifest: Manifest, options: Dict[str, Any], home: str, out: Emitter) -> BuildJob:
    from edgeagent.backends import trt as trt_backend
    from edgeagent.backends.trt_compat import api_for, int8_source

    entry = manifest.model_entry()
    qdq = manifest.files("qdq_model")
    # calibration data = images the device can calibrate on (a host cache alone may not match this TensorRT)
    images = bool(manifest.files("calibration_image"))
    route = int8_source(api_for(trt_backend.trt_version() or "0.0"), bool(qdq), images)
    explicit = options["precision"] == "int8" and route == "qdq"
    if explicit:
        entry = qdq[0]  # int8 from the Q/DQ nodes (explicit quantization), no calibrator
    path = _verified(manifest, entry)
    calib_sha = None if explicit else calibration_digest(manifest)
    fingerprint = trt_backend.trt_fingerprint(
        entry["sha256"], options, trt_backend.device_facts(), calibration_sha256=calib_sha
    )

    def run() -> bytes:
        calibrator = None
        if options["precision"] == "int8" and not explicit:
            calibrator = _calibrator(manifest, home, calib_sha, trt_backend)
        return trt_backend.build_engine(path, options, calibration=calibrator, log=lambda line: out.log(line))

    return BuildJob(path, fingerprint, run, ".engine", options["precision"])


def _calibrator(manifest: Manifest, home: str, calib_sha: Optional[str], trt_backend: Any) -> Any:
    images = [manifest.file_path(entry) for entry in manifest.files("calibration_image")]
    caches = manifest.files("calibration_cache")
    if not images and not caches:
        raise BadInput(
            "int8 needs calibration data and the bundle has none",
            "run `edgesdk calibrate` and deploy again, or deploy with --precision fp16",
        )
    shape = manifest.input_shape
    cache_dir = os.path.join(home, "calibration")
    if not os.path.isdir(cache_dir):
        os.makedirs(cache_dir)
    cache_path = os.path.join(cache_dir, "{}-{}.cache".format(manifest.name, (calib_sha or "none")[:16]))
    batches = trt_backend.CalibrationBatches(images, manifest.preprocess, shape) if images else []
    host_cache = manifest.file_path(caches[0]) if caches else None
    return trt_backend.make_entropy_calibrator(
        batches, cache_path, batch_size=shape[0], input_shape=shape, host_cache=host_cache
    )


def _verified(manifest: Manifest, entry: Dict[str, Any]) -> str:
    path = manifest.file_path(entry)
    if not os.path.isfile(path) or sha256_file(path) != entry["sha256"]:
        raise BadInput(
            "{} file {} is missing or corrupt".format(entry.get("role"), path), "deploy the recipe again"
        )
    return path


_JOBS: Dict[str, Callable[[Manifest, Dict[str, Any], str, Emitter], BuildJob]] = {
    "ort": _ort_job,
    "trt": _trt_job,
}


def build(
    manifest: Manifest, home: str, *, backend: str, precision: Optional[str], out: Emitter
) -> Dict[str, Any]:
    """Build (or reuse) the engine for ``manifest`` and make it the recipe's active engine.

    Returns:
        The ``result`` data: engine key and path, backend, precision, cached flag, seconds.
    """
    from edgeagent.engines import EngineCache, EngineCacheError, fingerprint_key

    options = manifest.build
    if precision is not None:
        options["precision"] = precision
    if options.get("precision") not in PRECISIONS:
        raise BadInput(
            "precision must be one of {}, got {!r}".format(", ".join(PRECISIONS), options.get("precision"))
        )
    started = time.monotonic()
    job = _JOBS[backend](manifest, options, home, out)
    key = fingerprint_key(job.fingerprint)
    cache = EngineCache(os.path.join(home, "engines"))
    path = cache.lookup(job.fingerprint)
    cached = path is not None
    if path is None:
        out.progress("build", 0, 1, force=True)
        try:
            data = job.run()
        except (BadInput, MissingDependency):
            raise
        except Exception as err:  # backend errors carry the lines that matter
            raise BuildFailed(f"{backend} engine build failed for {manifest.name}: {err}") from err
        provenance = {
            "recipe": manifest.name,
            "build_seconds": round(time.monotonic() - started, 3),
            "effective_precision": job.effective_precision,
        }
        try:
            path = cache.store(job.fingerprint, data, provenance, suffix=job.suffix)
        except (EngineCacheError, OSError) as err:
            raise BuildFailed(f"cannot store the engine under {home}: {err}") from err
        out.progress("build", 1, 1, force=True)
    cache.activate(manifest.name, key)
    return {
        "recipe": manifest.name,
        "backend": backend,
        "backend_version": job.fingerprint["backend_version"],
        "precision": options["precision"],
        "effective_precision": job.effective_precision,
        "engine": key,
        "engine_path": str(path),
        "cached": cached,
        "seconds": round(time.monotonic() - started, 3),
    }
