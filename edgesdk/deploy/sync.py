"""Content-addressed push of the agent and a bundle, then build and atomic activation.

Two halves, kept apart (STYLE §7): :func:`plan_push` turns *facts* about a device (its
home, which files it already has) into a list of steps — transfers and argv commands —
without touching the network; :func:`execute` runs those steps over a transport.
``--dry-run`` prints the plan.

Device side (see ``edgeagent.store``): uploads land in ``incoming/`` under a one-off name,
are verified by sha256 on the device and renamed into ``store/``; the bundle is
installed from stored files; the engine is built; only then is the deployment switched
(one atomic replace). A push cut at any byte leaves the previous deployment active; the
next deploy cleans the debris and completes.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from edgesdk.bundle import Bundle
from edgesdk.deploy.transport import CommandStream, Transport
from edgesdk.errors import CommandFailed, DeviceError, RemoteError

AGENT_DIR = ".edgeagent"

# Verify an uploaded agent on the device and move it into place. Constant code: only the
# arguments (paths and the digest) vary, and they travel as quoted argv.
_COMMIT_AGENT = (
    "import hashlib,os,sys\n"
    "src,digest,dst=sys.argv[1:4]\n"
    "h=hashlib.sha256(open(src,'rb').read()).hexdigest()\n"
    "if h!=digest:\n os.unlink(src); sys.exit('agent upload corrupt: sha256 %s, expected %s'%(h,digest))\n"
    "os.replace(src,dst)\n"
)


@dataclass(frozen=True)
class Put:
    """Copy ``local`` to ``remote`` (a fresh name under ``incoming/``)."""

    local: Path
    remote: str
    size: int
    sha256: str
    role: str

    def describe(self) -> str:
        return f"put {self.local.name} ({self.role}, {self.size} B) -> {self.remote}"


@dataclass(frozen=True)
class Run:
    """Run ``argv`` on the device; ``agent`` commands print JSON events (streamed)."""

    argv: list[str]
    what: str
    agent: bool = False
    always: bool = False  # run even after a failure (unlock)

    def describe(self) -> str:
        from edgesdk.deploy.transport import quote_argv

        return f"run {quote_argv(self.argv)}"


Step = Union[Put, Run]


@dataclass(frozen=True)
class DeviceState:
    """Facts gathered before planning.

    Attributes:
        home: the agent folder on the device (absolute).
        python: the interpreter that runs the agent there.
        agent_present: the device already has this exact agent zipapp.
        missing: digests the device's store lacks; None when unknown (assume all).
        stale_lock: owner of a deploy lock left by a deploy from this host that died.
    """

    home: str
    python: str
    agent_present: bool
    missing: frozenset[str] | None
    stale_lock: str | None = None


@dataclass(frozen=True)
class AgentPackage:
    """The agent zipapp on the host and its digest."""

    path: Path
    sha256: str

    @property
    def remote_name(self) -> str:
        return f"agents/edgeagent-{self.sha256[:16]}.pyz"


@dataclass
class Plan:
    """Steps for one device, with what they will send."""

    device: str
    steps: list[Step]
    bytes_to_send: int
    files_to_send: int
    files_skipped: int
    bundle_id: str
    agent_remote: str

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "bundle": self.bundle_id,
            "bytes_to_send": self.bytes_to_send,
            "files_to_send": self.files_to_send,
            "files_skipped": self.files_skipped,
            "steps": [step.describe() for step in self.steps],
        }


def agent_argv(state: DeviceState, agent: AgentPackage, *args: str) -> list[str]:
    """argv running the agent on the device with ``--home`` and ``--json``."""
    return [
        state.python,
        posixpath.join(state.home, agent.remote_name),
        *args,
        "--home",
        state.home,
        "--json",
    ]


def agent_steps(state: DeviceState, agent: AgentPackage, token: str) -> list[Step]:
    """Steps that put this exact agent zipapp on the device (none when it is there already)."""
    if state.agent_present:
        return []
    home = state.home
    part = posixpath.join(home, "incoming", f"agent-{agent.sha256}.{token}.part")
    final = posixpath.join(home, agent.remote_name)
    return [
        Run(["mkdir", "-p", posixpath.join(home, "agents"), posixpath.join(home, "incoming")], "prepare"),
        Put(agent.path, part, agent.path.stat().st_size, agent.sha256, "agent"),
        Run([state.python, "-c", _COMMIT_AGENT, part, agent.sha256, final], "verify agent"),
    ]


def plan_push(
    device: str,
    bundle: Bundle,
    agent: AgentPackage,
    state: DeviceState,
    *,
    owner: str,
    token: str | None = None,
) -> Plan:
    """Plan the push of ``agent`` and ``bundle`` to a device in ``state`` (pure; no I/O).

    Invariants: every upload goes to a unique name under ``incoming/``; nothing visible
    changes on the device before the lock is held; the deployment switches last.
    """
    token = token or uuid.uuid4().hex[:12]
    home = state.home
    steps: list[Step] = agent_steps(state, agent, token)
    sent = sum(step.size for step in steps if isinstance(step, Put))
    files = sum(1 for step in steps if isinstance(step, Put))
    lock = ["lock", "--owner", owner] + (["--break-stale", state.stale_lock] if state.stale_lock else [])
    steps.append(Run(agent_argv(state, agent, *lock), "lock", agent=True))
    manifest_sha = bundle.bundle_id
    uploads: list[tuple[str, Path, int, str]] = [
        (entry.sha256, bundle.path_of(entry.sha256), entry.size, entry.role) for entry in bundle.files
    ]
    manifest_path = bundle.root / "manifest.json"
    uploads.append((manifest_sha, manifest_path, manifest_path.stat().st_size, "manifest"))
    seen: set[str] = set()
    commits: list[str] = []
    skipped = 0
    for digest, path, size, role in uploads:
        if digest in seen:
            continue
        seen.add(digest)
        if state.missing is not None and digest not in state.missing:
            skipped += 1
            continue
        name = f"{digest}.{token}.part"
        steps.append(Put(path, posixpath.join(home, "incoming", name), size, digest, role))
        commits.append(f"{name}:{digest}")
        sent += size
        files += 1
    if commits:
        steps.append(Run(agent_argv(state, agent, "commit", *commits), "verify uploads", agent=True))
    steps.append(Run(agent_argv(state, agent, "install", bundle.bundle_id), "install bundle", agent=True))
    build = ["build", posixpath.join(home, "bundles", bundle.bundle_id)]
    steps.append(Run(agent_argv(state, agent, *build), "build engine", agent=True))
    recipe = bundle.manifest["recipe"]["name"]
    steps.append(Run(agent_argv(state, agent, "activate", recipe, bundle.bundle_id), "activate", agent=True))
    steps.append(Run(agent_argv(state, agent, "unlock", "--owner", owner), "unlock", agent=True, always=True))
    return Plan(
        device, steps, sent, files, skipped, bundle.bundle_id, posixpath.join(home, agent.remote_name)
    )


_RUNNING: set[str] = set()  # lock owners of deploys running in this process


def new_owner() -> str:
    """A lock owner for one deploy: ``<host>:<pid>:<token>``; forget it with :func:`owner_done`."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _RUNNING.add(owner)
    return owner


def owner_done(owner: str) -> None:
    _RUNNING.discard(owner)


def lock_is_stale(owner: str | None) -> bool:
    """Whether a lock owner is a deploy from THIS host that is certainly not running any more.

    Locks of other hosts are never judged here (the device breaks them after 30 minutes).
    """
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _RUNNING
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


EventFn = Callable[[str, dict[str, Any]], None]


@dataclass
class ExecResult:
    """What executing a plan did."""

    bytes_sent: int = 0
    files_sent: int = 0
    put_seconds: float = 0.0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)


def run_agent(
    transport: Transport, argv: list[str], what: str, on_event: EventFn | None = None
) -> dict[str, Any]:
    """Run an agent command, forward its events, and return its ``result`` data.

    Raises:
        DeviceError: the agent reported an error (its message and hint), or exited non-zero.
    """
    say = on_event or (lambda _k, _d: None)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    stream: CommandStream = transport.run_stream(argv)
    with stream:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                say("log", {"level": "info", "message": line})
                continue
            kind = event.get("event")
            if kind == "result":
                result = event.get("data") or {}
            elif kind == "error":
                error = event
            else:
                say(kind or "log", event)
    status = stream.result
    if error is not None:
        # The agent does not know what the host calls it; its hints say `--device …`.
        hint = (error.get("hint") or "").replace("--device …", f"--device {device_name(transport)}")
        raise DeviceError(f"{what} failed on {who(transport)}: {error.get('message')}", hint=hint or None)
    if status is not None and status.exit != 0 or result is None:
        detail = (status.error_text.strip().splitlines() or ["no output"])[-1] if status else "no exit status"
        raise DeviceError(
            f"{what} failed on {who(transport)} (exit {status.exit if status else '?'}): {detail}"
        )
    return result


def device_name(transport: Transport) -> str:
    """The inventory name of the device behind ``transport`` (what ``--device`` takes)."""
    return str(getattr(transport, "label", None) or transport.name)


def who(transport: Transport) -> str:
    """``jetson01 (nvidia@10.0.0.2:22)`` for messages (the SSH transport's own ``who``), or the
    transport's name alone (``local``)."""
    describe = getattr(transport, "who", None)
    return str(describe()) if callable(describe) else transport.name


def execute(
    transport: Transport, plan: Plan, *, on_event: EventFn | None = None, into: ExecResult | None = None
) -> ExecResult:
    """Run ``plan`` over ``transport``; steps marked ``always`` run even after a failure.

    Args:
        into: record into this result (so a caller still sees what was sent when a step fails).

    Raises:
        RemoteError / DeviceError: the first failing step (after the ``always`` steps ran).
    """
    say = on_event or (lambda _k, _d: None)
    out = into if into is not None else ExecResult()
    failure: BaseException | None = None
    for step in plan.steps:
        if failure is not None and not (isinstance(step, Run) and step.always):
            continue
        try:
            _do(transport, step, out, say)
        except (RemoteError, DeviceError, OSError) as err:
            if failure is None:
                failure = err
    if failure is not None:
        raise failure
    return out


def _do(transport: Transport, step: Step, out: ExecResult, say: EventFn) -> None:
    if isinstance(step, Put):
        say("put", {"role": step.role, "name": step.local.name, "size": step.size})
        started = time.perf_counter()
        transport.put(
            step.local, step.remote, progress=lambda done, total: say("bytes", {"done": done, "total": total})
        )
        out.put_seconds += time.perf_counter() - started
        out.bytes_sent += step.size
        out.files_sent += 1
        return
    say("step", {"what": step.what})
    if step.agent:
        out.results[step.what] = run_agent(transport, step.argv, step.what, say)
        return
    result = transport.run(step.argv, timeout=120)
    try:
        result.check(step.argv[:1] + ["…"], transport.name)
    except CommandFailed as err:
        raise DeviceError(
            f"{step.what} failed on {who(transport)}: {result.error_text.strip()[-300:]}"
        ) from err


def gather_state(
    transport: Transport, python: str, agent: AgentPackage, digests: Iterable[str]
) -> DeviceState:
    """Read the device's facts for planning (read-only: nothing is written)."""
    from edgesdk.deploy.transport import remote_home

    home = posixpath.join(remote_home(transport), AGENT_DIR)
    agent_path = posixpath.join(home, agent.remote_name)
    present = transport.run(["test", "-f", agent_path], timeout=30).ok
    missing: frozenset[str] | None = None
    if present:
        wanted = sorted(set(digests))
        data = run_agent(
            transport, [python, agent_path, "missing", *wanted, "--home", home, "--json"], "store query"
        )
        missing = frozenset(data["missing"])
        stale = data.get("lock") if lock_is_stale(data.get("lock")) else None
        return DeviceState(home, python, present, missing, stale)
    return DeviceState(home, python, present, missing)
