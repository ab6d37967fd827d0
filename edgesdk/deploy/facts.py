"""Device facts: each is one argv command plus one pure parser of its output.

Parsers take the command's stdout (text) and return a partial facts mapping; they raise
``ValueError`` on output they do not recognise. :func:`gather_facts` runs every command
through a transport and merges the results. A command that fails (a missing file, a missing
program) gives the fact's "absent" values plus a note, never an error: on a machine that is
not a Jetson the Jetson facts are ``None`` / ``False`` with a note saying so.

Facts (keys of :attr:`Facts.values`): ``arch``; ``jetson``, ``l4t``, ``l4t_board``,
``jetpack``, ``jetpack_exact``; ``model``; ``soc``, ``gpu_arch``; ``python``,
``python_executable``, ``numpy``, ``onnxruntime``, ``tensorrt``, ``tensorrt_python``,
``pycuda``, ``cuda``, ``cudnn``, ``opencv``, ``gstreamer``, ``gpus``, ``dla_cores``;
``disk``; ``power_mode``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesdk.deploy import jetson
from edgesdk.deploy.transport import Result, Transport
from edgesdk.errors import EdgeSdkInternalError

Parser = Callable[[str], dict[str, Any]]

PROBE_SOURCE = (Path(__file__).with_name("_probe.py")).read_bytes()


@dataclass(frozen=True)
class Fact:
    """One fact: the command that reveals it and the parser of its output.

    Attributes:
        name: registry key.
        argv: the command; ``{python}`` is replaced by the device's interpreter.
        parse: pure function of stdout → partial facts.
        absent: the values to report when the command fails (exit status non-zero).
        why_absent: the note for that case; ``{stderr}`` is replaced by stderr's last line.
        stdin: bytes fed to the command.
        why_not_found: the note when the program itself is missing (exit status 127);
            ``{program}`` is replaced by its name. None: use ``why_absent``.
    """

    name: str
    argv: tuple[str, ...]
    parse: Parser
    absent: dict[str, Any]
    why_absent: str
    stdin: bytes | None = None
    why_not_found: str | None = None


FACTS: dict[str, Fact] = {}


def register_fact(
    name: str,
    argv: Sequence[str],
    *,
    absent: dict[str, Any],
    why_absent: str,
    stdin: bytes | None = None,
    why_not_found: str | None = None,
) -> Callable[[Parser], Parser]:
    """Decorator: register ``parse`` as the parser of fact ``name`` (duplicate names raise)."""

    def decorate(parse: Parser) -> Parser:
        if name in FACTS:
            raise EdgeSdkInternalError(f"fact {name!r} is registered twice")
        FACTS[name] = Fact(name, tuple(argv), parse, absent, why_absent, stdin, why_not_found)
        return parse

    return decorate


@register_fact("arch", ["uname", "-m"], absent={"arch": None}, why_absent="uname -m failed: {stderr}")
def parse_arch(text: str) -> dict[str, Any]:
    """``uname -m`` → ``{"arch": "aarch64"}``."""
    arch = text.strip()
    if not arch or " " in arch:
        raise ValueError(f"unexpected `uname -m` output {text[:60]!r}")
    return {"arch": arch}


_TEGRA_RELEASE = re.compile(r"#\s*R(?P<major>\d+)\s*\(release\),\s*REVISION:\s*(?P<rev>[\d.]+?)\s*,")
_NOT_JETSON = {"jetson": False, "l4t": None, "l4t_board": None, "jetpack": None, "jetpack_exact": False}


@register_fact(
    "l4t",
    ["cat", "/etc/nv_tegra_release"],
    absent=_NOT_JETSON,
    why_absent="not a Jetson: /etc/nv_tegra_release not found",
)
def parse_nv_tegra_release(text: str) -> dict[str, Any]:
    """``/etc/nv_tegra_release`` → L4T release, its JetPack, and the BSP board name.

    Example input: ``# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, ...``
    → ``{"l4t": "35.3.1", "jetpack": "5.1.1", "jetpack_exact": True, "l4t_board": "t186ref"}``.
    """
    match = _TEGRA_RELEASE.search(text)
    if match is None:
        raise ValueError(f"unrecognised /etc/nv_tegra_release: {text.strip()[:80]!r}")
    l4t = jetson.normalize_l4t(f"{match.group('major')}.{match.group('rev')}")
    jetpack, exact = jetson.jetpack_for(l4t)
    board = re.search(r"BOARD:\s*([^,\s]+)", text)
    return {
        "jetson": True,
        "l4t": l4t,
        "l4t_board": board.group(1) if board else None,
        "jetpack": jetpack,
        "jetpack_exact": exact,
    }


@register_fact(
    "model", ["cat", "/proc/device-tree/model"], absent={"model": None}, why_absent="no device-tree model"
)
def parse_model(text: str) -> dict[str, Any]:
    """``/proc/device-tree/model`` (NUL-terminated) → ``{"model": "NVIDIA Orin Nano Developer Kit"}``."""
    model = text.replace("\x00", "").strip()
    if not model:
        raise ValueError("empty device-tree model")
    return {"model": model}


@register_fact(
    "soc",
    ["cat", "/proc/device-tree/compatible"],
    absent={"soc": None, "gpu_arch": None},
    why_absent="no device-tree compatible string",
)
def parse_compatible(text: str) -> dict[str, Any]:
    """``/proc/device-tree/compatible`` (NUL-separated) → SoC and its GPU architecture.

    Also accepts the entries run together without NULs (as some tools print them).
    """
    entries = [e for e in re.split(r"\x00|(?=nvidia,)", text.strip()) if e]
    socs = [m.group(1) for e in entries if (m := re.fullmatch(r"nvidia,(tegra\d+)", e.strip()))]
    if not socs:
        return {"soc": None, "gpu_arch": None}
    arch = jetson.SOC_GPU.get(socs[0])
    return {
        "soc": socs[0],
        "gpu_arch": None if arch is None else {"name": arch[0], "compute_capability": arch[1]},
    }


def parse_gstreamer(line: str | None) -> dict[str, Any]:
    """OpenCV's build-information ``GStreamer:`` line → whether and which GStreamer is built in.

    ``"GStreamer:  YES (1.16.3)"`` → ``{"enabled": True, "version": "1.16.3"}``; ``NO`` →
    ``{"enabled": False, "version": None}``; no line → None (OpenCV missing).
    """
    if line is None:
        return {"enabled": None, "version": None}
    match = re.match(r"\s*GStreamer\s*:\s*(?P<state>\w+)(?:\s*\((?P<version>[^)]*)\))?", line)
    if match is None:
        raise ValueError(f"unrecognised GStreamer line {line!r}")
    enabled = match.group("state").upper() == "YES"
    return {"enabled": enabled, "version": match.group("version") if enabled else None}


_PROBE_KEYS = ("python", "numpy", "onnxruntime", "tensorrt", "cuda", "cudnn", "opencv")


@register_fact(
    "versions",
    ["{python}", "-"],
    stdin=PROBE_SOURCE,
    absent={key: None for key in _PROBE_KEYS},
    why_absent="the device's Python could not run the probe: {stderr}",
    why_not_found="{program} not found on the device; set the right interpreter with "
    "`edgesdk devices add NAME --host H --python PATH`",
)
def parse_probe(text: str) -> dict[str, Any]:
    """The JSON printed by ``edgesdk/deploy/_probe.py`` → versions, GPUs and DLA cores."""
    try:
        data = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise ValueError(f"probe output is not JSON: {text.strip()[:80]!r}") from err
    if not isinstance(data, dict) or data.get("probe") != 1:
        raise ValueError("probe output has no 'probe': 1 marker")
    facts: dict[str, Any] = {key: data.get(key) for key in _PROBE_KEYS}
    facts.update(
        python_executable=data.get("python_executable"),
        tensorrt_python=bool(data.get("tensorrt_python")),
        pycuda=bool(data.get("pycuda")),
        gstreamer=parse_gstreamer(data.get("opencv_gstreamer_line")),
        dla_cores=int(data.get("dla_cores") or 0),
    )
    gpus = []
    for gpu in data.get("gpus") or []:
        cores = jetson.cuda_cores(str(gpu.get("compute_capability")), int(gpu.get("sm_count") or 0))
        gpus.append({**gpu, "cuda_cores": cores})
    facts["gpus"] = gpus
    return facts


@register_fact("disk", ["df", "-Pk", "."], absent={"disk": None}, why_absent="df failed: {stderr}")
def parse_df(text: str) -> dict[str, Any]:
    """``df -Pk`` (POSIX format, 1024-byte blocks) → the file system of the home directory.

    Returns ``{"disk": {"filesystem", "mount", "total_bytes", "used_bytes", "free_bytes"}}``;
    mount points with spaces are kept whole.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("Filesystem"):
        raise ValueError(f"unrecognised `df -Pk` output: {text[:80]!r}")
    match = re.match(
        r"(?P<fs>.+?)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+(?P<free>\d+)\s+(?:\d+%|-)\s+(?P<mount>.+)$",
        lines[1],
    )
    if match is None:
        raise ValueError(f"unrecognised `df -Pk` line: {lines[1]!r}")
    return {
        "disk": {
            "filesystem": match.group("fs"),
            "mount": match.group("mount"),
            "total_bytes": int(match.group("total")) * 1024,
            "used_bytes": int(match.group("used")) * 1024,
            "free_bytes": int(match.group("free")) * 1024,
        }
    }


@register_fact(
    "power_mode",
    ["nvpmodel", "-q"],
    absent={"power_mode": None},
    why_absent="nvpmodel -q failed (it may need sudo on this device): {stderr}",
    why_not_found="not a Jetson: nvpmodel not found",
)
def parse_nvpmodel(text: str) -> dict[str, Any]:
    """``nvpmodel -q`` → ``{"power_mode": {"name": "MAXN", "id": 0}}``.

    Warning lines (``NVPM WARN: ...``) and echoed prompts around the answer are ignored;
    the id is the first integer-only line after the ``NV Power Mode:`` line (None if absent).
    """
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.search(r"NV Power Mode:\s*(?P<name>\S.*?)\s*$", line)
        if match:
            ids = [int(s) for s in (x.strip() for x in lines[index + 1 :]) if s.isdigit()]
            return {"power_mode": {"name": match.group("name"), "id": ids[0] if ids else None}}
    raise ValueError(f"no 'NV Power Mode:' line in {text[:80]!r}")


@dataclass
class Facts:
    """The merged facts of one device.

    Attributes:
        values: fact key → value (see the module docstring).
        notes: fact name → why its values are absent or partial.
        seconds: wall time of gathering.
    """

    values: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the values plus ``notes``."""
        return {**self.values, "notes": dict(self.notes)}


def evaluate(fact: Fact, result: Result, program: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Apply one fact's parser to a command result: (values, note or None). Pure.

    Args:
        fact: the fact.
        result: what its command left behind.
        program: the program actually run (default ``fact.argv[0]``), for notes.
    """
    if result.exit == 127 and fact.why_not_found is not None:
        return dict(fact.absent), fact.why_not_found.replace("{program}", program or fact.argv[0])
    if not result.ok:
        last = (result.error_text.strip().splitlines() or ["(no message)"])[-1]
        return dict(fact.absent), fact.why_absent.replace("{stderr}", last)
    try:
        return fact.parse(result.text), None
    except ValueError as err:
        return dict(fact.absent), f"could not parse `{' '.join(fact.argv)}` output: {err}"


def gather_facts(
    transport: Transport, *, python: str = "python3", names: Sequence[str] | None = None
) -> Facts:
    """Run every fact's command on the device and merge the parsed values.

    Args:
        transport: an open (or lazily opening) transport to the device.
        python: the device's interpreter, for the versions probe.
        names: only these facts (default: all, in registration order).

    Raises:
        RemoteError: the connection itself failed (command failures become notes instead).
    """
    start = time.monotonic()
    facts = Facts()
    for name in names if names is not None else list(FACTS):
        fact = FACTS[name]
        argv = [python if arg == "{python}" else arg for arg in fact.argv]
        values, note = evaluate(fact, transport.run(argv, stdin=fact.stdin, timeout=120), argv[0])
        facts.values.update(values)
        if note is not None:
            facts.notes[name] = note
    facts.seconds = time.monotonic() - start
    return facts
