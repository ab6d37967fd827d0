"""``edgeagent run`` and ``edgeagent bench``: camera inference with the deployed engine.

Both load the recipe's current deployment (bundle manifest) and its active engine from the
agent home, pick the backend the engine was built for, and stream ``stats`` as progress
events while the pipeline runs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, NamedTuple, Optional

from edgeagent.backends.base import Backend
from edgeagent.events import BadInput, Emitter
from edgeagent.manifest import Manifest, load_manifest
from edgeagent.store import Store


class Deployment(NamedTuple):
    """What ``run``/``bench`` need: the manifest, the engine file and how it was built."""

    manifest: Manifest
    engine_path: str
    engine_key: str
    fingerprint: Dict[str, Any]


def not_deployed(store: Store, recipe: str) -> BadInput:
    """The error for a recipe never deployed here (names what is, and the deploy command)."""
    others = store.deployed()
    deployed = f" (deployed here: {', '.join(others)})" if others else " (nothing is deployed here yet)"
    return BadInput(
        f"{recipe} is not deployed on this device{deployed}",
        f"run `edgesdk deploy {recipe} --device …` first, or check the name",
    )


def load_deployment(home: str, recipe: str) -> Deployment:
    """The current deployment of ``recipe`` and its active engine.

    Raises:
        BadInput: never deployed here, or its engine is missing (names the deploy command).
    """
    from edgeagent.engines import EngineCache

    store = Store(home)
    state = store.deployment(recipe)
    if not state["current"]:
        raise not_deployed(store, recipe)
    manifest = load_manifest(store.path("bundles", state["current"]))
    active = EngineCache(store.path("engines")).active(recipe)
    if active is None:
        raise BadInput(f"{recipe} has no built engine here", "deploy it again to rebuild the engine")
    return Deployment(manifest, str(active.path), active.key, dict(active.sidecar.get("fingerprint", {})))


def open_backend(deployment: Deployment) -> Backend:
    """The backend the engine was built for (from its fingerprint)."""
    kind = deployment.fingerprint.get("backend")
    if kind == "ort":
        from edgeagent.backends.ort import OrtBackend

        return OrtBackend(deployment.engine_path)
    if kind == "trt":
        from edgeagent.backends.trt import TrtBackend

        return TrtBackend(deployment.engine_path)
    raise BadInput(f"engine {deployment.engine_key[:12]} has an unknown backend {kind!r}")


def _stats_event(out: Emitter):  # type: ignore[no-untyped-def]
    def emit(stats: Dict[str, Any]) -> None:
        out.event("stats", stats)

    return emit


def _sinks(uris: List[str]) -> List[Any]:
    from edgeagent.sinks import open_sink

    return [open_sink(uri) for uri in uris]


def run(home: str, recipe: str, source_uri: str, sink_uris: List[str], *, frames: Optional[int],
        duration: Optional[float], out: Emitter, source_options: Optional[Dict[str, Any]] = None,
        thresholds: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:  # fmt: skip
    """Run the deployed model on a source into sinks until the source ends or a limit is hit.

    ``thresholds``: ``conf_threshold`` / ``max_detections`` instead of the recipe's (e.g. 0.001 and
    300 to score the detections with ``edgesdk eval --detections``).
    """
    from edgeagent.pipeline import Pipeline, model_params
    from edgeagent.sources import open_source

    deployment = load_deployment(home, recipe)
    params = model_params(deployment.manifest)
    if thresholds:
        params = params._replace(postprocess=dict(params.postprocess, **thresholds))
    source = open_source(
        source_uri,
        on_event=lambda e: out.event("source", {"kind": e.kind, "message": e.message}),
        **(source_options or {}),
    )
    sinks = _sinks(sink_uris)
    for sink in sinks:
        url = getattr(sink, "url", None)
        if url:
            out.event("sink", {"uri": getattr(sink, "uri", ""), "url": url})
    backend = open_backend(deployment)
    with backend:
        pipeline = Pipeline(source, backend, params, sinks, on_stats=_stats_event(out))
        stats = pipeline.run(max_frames=frames, duration=duration)
    summary = stats.summary()
    summary.update(recipe=recipe, engine=deployment.engine_key, backend=deployment.fingerprint.get("backend"))
    # where the file sinks wrote, as absolute paths on this machine (the host prints them)
    summary["outputs"] = [os.path.abspath(s.path) for s in sinks if isinstance(getattr(s, "path", None), str)]
    return summary


def bench(home: str, recipe: str, source_uri: str, *, frames: Optional[int], duration: Optional[float],
          warmup: int, out: Emitter, source_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:  # fmt: skip
    """Benchmark the deployed engine alone and the whole pipeline; write and return the report."""
    from edgeagent import bench as bench_mod
    from edgeagent.info import machine_info
    from edgeagent.sources import open_source
    from edgeagent.telemetry import TelemetrySampler

    deployment = load_deployment(home, recipe)
    source = open_source(source_uri, **(source_options or {}))
    backend = open_backend(deployment)
    versions = machine_info()
    sampler = TelemetrySampler(0.5)
    with backend:
        report = bench_mod.bench(
            backend, deployment.manifest, source, warmup=warmup, frames=frames, duration=duration,
            telemetry=sampler, versions=versions, on_stats=_stats_event(out),
        )  # fmt: skip
    fp = deployment.fingerprint
    effective = (
        fp.get("precision")
        if fp.get("backend") == "trt"
        else ("int8" if fp.get("calibration_sha256") else "fp32")
    )
    report.update(
        recipe=recipe, precision=effective, requested_precision=fp.get("precision"), engine=deployment.engine_key,
        backend_version=fp.get("backend_version"), gpu=fp.get("gpu"), dla_core=fp.get("dla_core"),
    )  # fmt: skip
    folder = os.path.join(home, "reports")
    if not os.path.isdir(folder):
        os.makedirs(folder)
    path = os.path.join(folder, "{}-{}.json".format(recipe, time.strftime("%Y%m%d-%H%M%S")))
    with open(path, "w") as fh:
        json.dump(report, fh)
    report["report_path"] = path
    return report
