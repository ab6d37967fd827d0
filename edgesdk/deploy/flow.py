"""``edgesdk deploy``: export → bundle → push → build → activate, for one device or a group.

Devices of a group deploy in parallel (one thread and one connection each); one failing
device does not stop the others, and every device gets a report.
"""

from __future__ import annotations

import logging
import posixpath
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesdk.agentpkg import write_agent_zip
from edgesdk.bundle import Bundle, write_bundle
from edgesdk.deploy.connect import open_transport
from edgesdk.deploy.inventory import Device
from edgesdk.deploy.sync import (
    AgentPackage,
    DeviceState,
    ExecResult,
    Plan,
    Run,
    Step,
    agent_argv,
    agent_steps,
    execute,
    gather_state,
    new_owner,
    owner_done,
    plan_push,
    run_agent,
)
from edgesdk.deploy.transport import Transport
from edgesdk.errors import EdgeSdkError
from edgesdk.export import export_recipe
from edgesdk.recipe import Recipe

log = logging.getLogger(__name__)

DeviceEventFn = Callable[[str, str, dict[str, Any]], None]
"""``on_event(device_name, kind, data)``: progress from every device (called from worker threads)."""


@dataclass
class DeviceReport:
    """What happened on one device (``--json`` prints one per device)."""

    device: str
    ok: bool
    bytes_sent: int = 0
    files_sent: int = 0
    files_skipped: int = 0
    seconds: float = 0.0
    push_seconds: float = 0.0
    engine: str | None = None
    error: str | None = None
    hint: str | None = None
    bundle: str | None = None
    build: dict[str, Any] = field(default_factory=dict)
    plan: list[str] | None = None
    slim: dict[str, Any] | None = None
    previous: str | None = None
    """The bundle that was active before this deploy (what ``rollback`` goes back to), if any."""

    def to_json(self) -> dict[str, Any]:
        data = {
            "device": self.device,
            "ok": self.ok,
            "bytes_sent": self.bytes_sent,
            "files_sent": self.files_sent,
            "files_skipped": self.files_skipped,
            "seconds": round(self.seconds, 3),
            "push_seconds": round(self.push_seconds, 3),
            "engine": self.engine,
            "error": self.error,
            "bundle": self.bundle,
            "backend": self.build.get("backend"),
            "precision": self.build.get("precision"),
            "effective_precision": self.build.get("effective_precision"),
            "previous_bundle": self.previous,
            "cached": self.build.get("cached"),
            "build_seconds": self.build.get("seconds"),
        }
        if self.plan is not None:
            data["plan"] = self.plan
        if self.slim is not None:
            data["slim"] = self.slim
        return data


@dataclass(frozen=True)
class Prepared:
    """Host-side artifacts shared by every device of one deploy."""

    bundle: Bundle
    agent: AgentPackage
    slim: dict[str, Any] | None = None
    """What slimming did (``recipe.slim.enabled``), see :func:`edgesdk.slim.driver.slim_for_deploy`."""


def prepare(
    recipe: Recipe,
    work_dir: Path,
    *,
    model_dir: Path | None = None,
    model: Path | None = None,
    parity_images: Sequence[Path] | None = None,
    calibration: Path | None = None,
    slim_images: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Prepared:
    """Export the recipe (slimmed when ``slim.enabled``, calibrated on ``slim_images``) and write its
    bundle (with ``calibration``'s files) and the agent zipapp."""
    if recipe.slim.enabled and calibration is not None:
        from edgesdk.errors import CalibrationError

        # calibrate works on the exported model: its thresholds (and an equalised model.onnx)
        # describe the unslimmed model, not the one this deploy would slim.
        raise CalibrationError(
            f"{recipe.name}: --calibration {calibration} was measured on the unslimmed model, "
            "but slim.enabled slims it first",
            hint="calibrate the slim model (edgesdk slim … -o S.onnx; edgesdk calibrate … --model S.onnx) "
            "and deploy with --model S.onnx and slim.enabled: false",
        )
    say = progress or (lambda _m: None)
    onnx_path = work_dir / recipe.name / "model.onnx"
    exported = export_recipe(
        recipe, model_dir=model_dir, model=model, parity_images=parity_images, output=onnx_path, progress=say
    )
    slim = None
    if recipe.slim.enabled:
        from edgesdk.slim.driver import slim_for_deploy

        say("slim")
        slim = slim_for_deploy(recipe, exported.model, onnx_path, images=slim_images)
    say("bundle")
    files: list[tuple[str, Path]] = [("model", onnx_path)]
    if calibration is not None:
        from edgesdk.quant.calibrate import bundle_files

        extra = bundle_files(calibration, recipe)
        if any(role == "model" for role, _path in extra):  # quantize.equalize: the cache's own model
            files = []
        files += extra
    bundle = write_bundle(recipe, files, work_dir / recipe.name / "bundle")
    agent_path = work_dir / "edgeagent.pyz"
    digest = write_agent_zip(agent_path)
    return Prepared(bundle, AgentPackage(agent_path, digest), slim)


def _digests(bundle: Bundle) -> list[str]:
    return [entry.sha256 for entry in bundle.files] + [bundle.bundle_id]


def deploy_device(
    device: Device,
    prepared: Prepared,
    *,
    accept_new: bool = False,
    dry_run: bool = False,
    on_event: DeviceEventFn | None = None,
) -> DeviceReport:
    """Deploy to one device; never raises for device-side failures (they go in the report)."""
    started = time.perf_counter()
    say = on_event or (lambda _d, _k, _x: None)
    report = DeviceReport(device.name, ok=False, bundle=prepared.bundle.bundle_id, slim=prepared.slim)
    owner = new_owner()
    done = ExecResult()
    try:
        with open_transport(device, accept_new=accept_new) as transport:
            say(device.name, "step", {"what": "connect"})
            state = gather_state(transport, device.python, prepared.agent, _digests(prepared.bundle))
            plan = plan_push(device.name, prepared.bundle, prepared.agent, state, owner=owner)
            report.files_skipped = plan.files_skipped
            if dry_run:
                report.plan = [step.describe() for step in plan.steps]
                report.ok = True
                return report
            say(device.name, "plan", {"bytes": plan.bytes_to_send, "files": plan.files_to_send})
            execute(transport, plan, on_event=lambda kind, data: say(device.name, kind, data), into=done)
            report.build = done.results.get("build engine", {})
            report.engine = report.build.get("engine")
            history = done.results.get("activate", {}).get("history") or []
            report.previous = history[0] if history else None
            report.ok = True
    except EdgeSdkError as err:
        report.error = " ".join(str(err).split())
        report.hint = err.hint
    finally:
        owner_done(owner)
        # also when a later step failed: what went over the wire is still on the device
        report.bytes_sent, report.files_sent, report.push_seconds = (
            done.bytes_sent,
            done.files_sent,
            done.put_seconds,
        )
        report.seconds = time.perf_counter() - started
        say(device.name, "done", {"ok": report.ok})
    return report


def deploy(
    recipe: Recipe,
    devices: Sequence[Device],
    work_dir: Path,
    *,
    model_dir: Path | None = None,
    model: Path | None = None,
    accept_new: bool = False,
    dry_run: bool = False,
    parity_images: Sequence[Path] | None = None,
    calibration: Path | None = None,
    slim_images: Path | None = None,
    on_event: DeviceEventFn | None = None,
    max_parallel: int = 8,
) -> list[DeviceReport]:
    """Export and bundle once, then deploy to every device in parallel.

    Raises:
        EdgeSdkError: export, slimming or bundling failed (before any device is touched).
    """
    prepared = prepare(
        recipe,
        work_dir,
        model_dir=model_dir,
        model=model,
        parity_images=parity_images,
        calibration=calibration,
        slim_images=slim_images,
    )
    if len(devices) == 1:
        return [
            deploy_device(
                devices[0],
                prepared,
                accept_new=accept_new,
                dry_run=dry_run,
                on_event=on_event,
            )
        ]
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(devices))) as pool:
        futures = [
            pool.submit(
                deploy_device,
                device,
                prepared,
                accept_new=accept_new,
                dry_run=dry_run,
                on_event=on_event,
            )
            for device in devices
        ]
        return [future.result() for future in futures]


@contextmanager
def _agent_session(
    device: Device, work_dir: Path, accept_new: bool
) -> Iterator[tuple[Transport, DeviceState, AgentPackage]]:
    """A connection to ``device`` with this agent on it (pushed first when missing)."""
    agent_path = work_dir / "edgeagent.pyz"
    agent = AgentPackage(agent_path, write_agent_zip(agent_path))
    with open_transport(device, accept_new=accept_new) as transport:
        state = gather_state(transport, device.python, agent, [])
        steps = agent_steps(state, agent, uuid.uuid4().hex[:12])
        if steps:
            execute(transport, Plan(device.name, steps, 0, 0, 0, "", ""))
        yield transport, state, agent


def rollback(recipe_name: str, device: Device, work_dir: Path, *, accept_new: bool = False) -> dict[str, Any]:
    """Re-activate the previous deployment of ``recipe_name`` on ``device`` (and its engine).

    Raises:
        DeviceError: nothing to roll back to, or the agent failed.
    """
    with _agent_session(device, work_dir, accept_new) as (transport, state, agent):
        return run_agent(transport, agent_argv(state, agent, "rollback", recipe_name), "rollback")


def deployment_status(device: Device, work_dir: Path, *, accept_new: bool = False) -> dict[str, Any]:
    """What is deployed on ``device``: the agent's ``status`` (``{"home", "recipes": {name: {...}}}``).

    Each recipe has ``current`` (bundle id), ``history`` (earlier bundles, newest first),
    ``activated`` (epoch seconds) and, when its engine is there, ``engine``, ``backend``,
    ``backend_version``, ``precision``, ``effective_precision``, ``engine_bytes``, ``built``.
    """
    with _agent_session(device, work_dir, accept_new) as (transport, state, agent):
        return run_agent(transport, agent_argv(state, agent, "status"), "status")


def reactivate(
    recipe_name: str,
    bundle_id: str,
    device: Device,
    work_dir: Path,
    *,
    history: Sequence[str] | None = None,
    accept_new: bool = False,
) -> dict[str, Any]:
    """Make ``bundle_id`` (installed on the device earlier) the deployment of ``recipe_name`` again.

    Under the deploy lock: build its engine (a cache hit when it was built before), then
    activate it, as a deploy's last steps do. ``history``: the earlier deployments to record
    (newest first) instead of pushing the current one on top.

    Raises:
        DeviceError: the lock is busy, the bundle is gone, or the build failed.
    """
    kept = [] if history is None else ["--history", *history]
    owner = new_owner()
    try:
        with _agent_session(device, work_dir, accept_new) as (transport, state, agent):
            steps: list[Step] = [
                Run(agent_argv(state, agent, "lock", "--owner", owner), "lock", agent=True),
                Run(
                    agent_argv(state, agent, "build", posixpath.join(state.home, "bundles", bundle_id)),
                    "build engine",
                    agent=True,
                ),
                Run(
                    agent_argv(state, agent, "activate", recipe_name, bundle_id, *kept),
                    "activate",
                    agent=True,
                ),
                Run(agent_argv(state, agent, "unlock", "--owner", owner), "unlock", agent=True, always=True),
            ]
            done = execute(transport, Plan(device.name, steps, 0, 0, 0, bundle_id, ""))
    finally:
        owner_done(owner)
    return done.results.get("activate", {})
