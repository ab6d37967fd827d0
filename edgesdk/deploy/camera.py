"""Run and benchmark a deployed recipe on a device, streaming the agent's events back.

``run_on_device`` starts ``edgeagent run`` (camera → engine → sinks) and hands every
``stats``/``sink``/``source`` event to a callback; with ``view`` it adds an MJPEG sink on the
device and, over SSH, forwards a local port to it so a browser on the host shows the stream.
``bench_on_device`` deploys the recipe at each requested precision, runs ``edgeagent bench``,
returns the reports, and re-activates the deployment that was active before.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from edgesdk.agentpkg import write_agent_zip
from edgesdk.deploy.connect import open_transport
from edgesdk.deploy.flow import deploy, deployment_status, reactivate
from edgesdk.deploy.inventory import Device
from edgesdk.deploy.sync import AgentPackage, Plan, agent_argv, agent_steps, execute, gather_state, run_agent
from edgesdk.deploy.transport import Transport
from edgesdk.errors import DeviceError, EdgeSdkError
from edgesdk.recipe import Recipe, override

EventFn = Callable[[str, dict[str, Any]], None]

log = logging.getLogger(__name__)


_PATH_SCHEMES = ("file", "dir", "jsonl")
"""URI schemes whose location is a path on the device (``dir://frames``, ``jsonl://dets.jsonl``)."""


def on_device(uri: str, device: Device) -> str:
    """``uri`` as the agent must see it: on ``local`` a relative path is relative to this process's
    directory (where the user typed it), not to the agent's working directory (the home folder).
    That holds for bare paths and for the path schemes (``dir://frames`` → ``dir:///abs/frames``)."""
    if not device.is_local or not uri:
        return uri
    scheme, sep, rest = uri.partition("://")
    if not sep:
        if os.path.isabs(uri):
            return uri
        absolute = os.path.abspath(uri)
        return absolute + "/" if uri.endswith("/") else absolute  # a trailing "/" makes a folder sink
    parts = urlsplit(uri)
    location = unquote(parts.netloc + parts.path)
    if scheme.lower() not in _PATH_SCHEMES or not location or os.path.isabs(location):
        return uri
    path = quote(os.path.abspath(location), safe="/")
    return f"{scheme}://{path}" + (f"?{parts.query}" if parts.query else "")


def camera_args(camera: dict[str, Any] | None) -> list[str]:
    """Agent arguments for camera options (``width``, ``height``, ``fps``, ``flip``, ``codec``)."""
    args: list[str] = []
    for key, value in (camera or {}).items():
        if value is not None:
            args += [f"--{key}", str(value)]
    return args


def _agent(work_dir: Path) -> AgentPackage:
    path = work_dir / "edgeagent.pyz"
    return AgentPackage(path, write_agent_zip(path))


def _ensure_agent(transport: Transport, device: Device, agent: AgentPackage):  # type: ignore[no-untyped-def]
    state = gather_state(transport, device.python, agent, [])
    steps = agent_steps(state, agent, "run")
    if steps:
        execute(transport, Plan(device.name, steps, 0, 0, 0, "", ""))
    return state


class PortForward:
    """Forward ``127.0.0.1:<local_port>`` on the host to ``127.0.0.1:<remote_port>`` on the device over SSH."""

    def __init__(self, transport: Any, remote_port: int) -> None:
        self.transport = transport
        self.remote_port = remote_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._stop = threading.Event()
        threading.Thread(target=self._accept, name="edgesdk-forward", daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                channel = self.transport.open_tunnel("127.0.0.1", self.remote_port)
            except Exception:  # the device side is gone: drop this browser connection
                client.close()
                continue
            for src, dst in ((client, channel), (channel, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def _pump(src: Any, dst: Any) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for end in (src, dst):
            try:
                end.close()
            except OSError:
                pass


@dataclass
class RunResult:
    """What ``edgesdk run`` reports at the end, plus the viewer URL when one was opened."""

    summary: dict[str, Any]
    view_url: str | None = None


def run_on_device(
    device: Device,
    recipe_name: str,
    work_dir: Path,
    *,
    source: str,
    sinks: Sequence[str] = (),
    frames: int | None = None,
    duration: float | None = None,
    view: bool = False,
    view_port: int = 0,
    camera: dict[str, Any] | None = None,
    conf: float | None = None,
    max_det: int | None = None,
    accept_new: bool = False,
    on_event: EventFn | None = None,
) -> RunResult:
    """Run the deployed ``recipe_name`` on ``device`` until the source ends or a limit is hit.

    Raises:
        DeviceError: not deployed there, the source cannot be opened, a stage failed.
    """
    say = on_event or (lambda _k, _d: None)
    agent = _agent(work_dir)
    source = on_device(source, device)
    all_sinks = [on_device(sink, device) for sink in sinks]
    if view:
        all_sinks.append(f"mjpeg://127.0.0.1:{view_port}")  # loopback on the device; SSH forwards it
    with open_transport(device, accept_new=accept_new) as transport:
        state = _ensure_agent(transport, device, agent)
        args = ["run", recipe_name, "--source", source, *camera_args(camera)]
        for sink in all_sinks:
            args += ["--sink", sink]
        if frames is not None:
            args += ["--frames", str(frames)]
        if duration is not None:
            args += ["--duration", str(duration)]
        args += ["--conf", repr(conf)] if conf is not None else []
        args += ["--max-det", str(max_det)] if max_det is not None else []
        forward: PortForward | None = None
        result = RunResult({})

        def handle(kind: str, data: dict[str, Any]) -> None:
            nonlocal forward
            if kind == "sink" and data.get("url") and view and result.view_url is None:
                port = int(str(data["url"]).rstrip("/").rsplit(":", 1)[1])
                if device.is_local:
                    result.view_url = f"http://127.0.0.1:{port}/"
                else:
                    forward = PortForward(transport, port)
                    result.view_url = f"http://127.0.0.1:{forward.port}/"
                data = dict(data, view_url=result.view_url)
            say(kind, data)

        try:
            result.summary = run_agent(transport, agent_argv(state, agent, *args), "run", handle)
        finally:
            if forward is not None:
                forward.close()
    return result


def bench_on_device(
    device: Device,
    recipe: Recipe,
    work_dir: Path,
    *,
    precisions: Sequence[str],
    source: str,
    frames: int | None = None,
    duration: float | None = None,
    warmup: int = 10,
    camera: dict[str, Any] | None = None,
    model_dir: Path | None = None,
    calibration: Path | None = None,
    accept_new: bool = False,
    on_event: EventFn | None = None,
) -> list[dict[str, Any]]:
    """Deploy ``recipe`` at each precision and benchmark it; one report per precision.

    A benchmark does not change what the device runs: the deployment that was active before
    (if any) is active again afterwards, also when a step fails.

    Args:
        calibration: a folder from ``edgesdk calibrate -o`` for the int8 deploys (as ``deploy --calibration``).

    Raises:
        DeviceError: a deploy or a benchmark failed (names the precision).
    """
    say = on_event or (lambda _k, _d: None)
    source = on_device(source, device)
    args = ["bench", recipe.name, "--source", source, "--warmup", str(warmup), *camera_args(camera)]
    args += ["--frames", str(frames)] if frames is not None else []
    args += ["--duration", str(duration)] if duration is not None else []
    found = deployment_status(device, work_dir, accept_new=accept_new)["recipes"].get(recipe.name) or {}
    before, history = found.get("current"), list(found.get("history") or [])
    changed, failed = False, True  # changed: a deploy made another bundle current (history grew)
    reports = []
    try:
        for precision in precisions:
            spec = override(recipe, {"build.precision": precision}, "--precision")
            say("phase", {"what": f"deploy {precision}"})
            [report] = deploy(
                spec, [device], work_dir, model_dir=model_dir, accept_new=accept_new, calibration=calibration
            )
            if not report.ok:
                raise DeviceError(
                    f"deploy of {recipe.name} ({precision}) to {device.name} failed: {report.error}",
                    hint=report.hint,
                )
            changed = changed or report.bundle != before
            say("phase", {"what": f"bench {precision}"})
            agent = _agent(work_dir)
            with open_transport(device, accept_new=accept_new) as transport:
                state = gather_state(transport, device.python, agent, [])
                data = run_agent(transport, agent_argv(state, agent, *args), f"bench ({precision})", say)
            reports.append(dict(data, device=device.name, requested_precision=precision))
        failed = False
    finally:
        if before is not None and changed:
            _restore(recipe.name, (before, history), device, work_dir, accept_new, say, quiet=failed)
    return reports


def _restore(
    name: str,
    state: tuple[str, list[str]],
    device: Device,
    work_dir: Path,
    accept_new: bool,
    say: EventFn,
    *,
    quiet: bool,
) -> None:
    """Put back the deployment a benchmark found, and its history (so ``rollback`` goes where it went
    before, not to a benchmark's deploy); ``quiet``: only log a failure (another error is on its way)."""
    bundle, history = state
    say("phase", {"what": "re-activate the earlier deployment"})
    try:
        reactivate(name, bundle, device, work_dir, history=history, accept_new=accept_new)
    except EdgeSdkError as err:
        if not quiet:
            raise
        log.warning("could not re-activate %s's earlier deployment %s: %s", name, bundle[:12], err)
