"""``edgesdk devices check``: gather the facts of one or many devices, in parallel.

One failing device never stops the others; each gets a :class:`CheckReport`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edgesdk.deploy.connect import open_transport
from edgesdk.deploy.facts import Facts, gather_facts
from edgesdk.deploy.inventory import Device
from edgesdk.errors import EdgeSdkError


@dataclass
class CheckReport:
    """The outcome of checking one device.

    Attributes:
        device: the device checked.
        facts: its facts (None when connecting failed).
        error: the one-line error (None on success).
        hint: what to do about ``error``.
        error_type: the error's class name, e.g. ``UnknownHostKey``.
        seconds: wall time, connecting included.
    """

    device: Device
    facts: Facts | None = None
    error: str | None = None
    hint: str | None = None
    error_type: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``device``, ``ok``, ``host``, ``facts``, ``error``, ``hint``, ``seconds``."""
        return {
            "device": self.device.name,
            "ok": self.ok,
            "host": self.device.host,
            "facts": self.facts.to_dict() if self.facts is not None else None,
            "error": self.error,
            "error_type": self.error_type,
            "hint": self.hint,
            "seconds": round(self.seconds, 3),
        }


def check_device(device: Device, *, accept_new: bool = False) -> CheckReport:
    """Connect to ``device`` and gather its facts; user errors become the report's ``error``."""
    start = time.monotonic()
    report = CheckReport(device)
    try:
        with open_transport(device, accept_new=accept_new) as transport:
            report.facts = gather_facts(transport, python=device.python)
    except EdgeSdkError as err:
        report.error = " ".join(str(err).split())
        report.hint = err.hint
        report.error_type = type(err).__name__
    report.seconds = time.monotonic() - start
    return report


def check_devices(
    devices: Sequence[Device], *, accept_new: bool = False, workers: int = 8
) -> list[CheckReport]:
    """:func:`check_device` for each device, ``workers`` at a time; reports in input order."""
    if len(devices) <= 1:
        return [check_device(d, accept_new=accept_new) for d in devices]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(devices)))) as pool:
        return list(pool.map(lambda d: check_device(d, accept_new=accept_new), devices))


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _jetpack(v: dict[str, Any], notes: dict[str, str]) -> str:
    if not v.get("jetson"):
        return f"— ({notes.get('l4t', 'not a Jetson')})"
    exact = "" if v.get("jetpack_exact") else " (family; release not in edgesdk's table)"
    return f"L4T {v.get('l4t') or '?'} / JetPack {v.get('jetpack') or '?'}{exact}"


def _gpu(v: dict[str, Any]) -> str:
    gpus = v.get("gpus") or []
    if gpus:
        return "; ".join(
            f"{g['name']} cc {g['compute_capability']}, {g['sm_count']} SMs"
            + (f" ({g['cuda_cores']} CUDA cores)" if g.get("cuda_cores") else "")
            for g in gpus
        )
    arch = v.get("gpu_arch")
    if arch:
        return (
            f"{arch['name']} cc {arch['compute_capability']} (from the SoC; the CUDA driver did not answer)"
        )
    return "none found"


def _opencv(v: dict[str, Any]) -> str:
    if not v.get("opencv"):
        return "not installed"
    gst = v.get("gstreamer") or {}
    return v["opencv"] + (
        f" (GStreamer {gst.get('version') or 'yes'})" if gst.get("enabled") else " (no GStreamer)"
    )


def _python(v: dict[str, Any], notes: dict[str, str]) -> str:
    if not v.get("python"):
        return f"? ({notes.get('versions', 'unknown')})"
    return (
        f"{v['python']} ({v.get('python_executable')}); numpy {v.get('numpy') or 'missing'}; "
        f"pycuda {'yes' if v.get('pycuda') else 'no'}; onnxruntime {v.get('onnxruntime') or 'no'}"
    )


def fact_rows(facts: Facts) -> list[tuple[str, str]]:
    """Human-readable (label, value) rows for a facts table. Pure."""
    v, notes = facts.values, facts.notes
    board = (v.get("model") or "—") + (f" ({v['soc']})" if v.get("soc") else "")
    trt = v.get("tensorrt")
    if trt and not v.get("tensorrt_python"):
        trt += " (library only: no Python binding)"
    disk = v.get("disk")
    mode = v.get("power_mode")
    return [
        ("arch", v.get("arch") or "?"),
        ("L4T / JetPack", _jetpack(v, notes)),
        ("board", board),
        ("GPU", _gpu(v)),
        ("DLA cores", str(v.get("dla_cores", "?"))),
        ("TensorRT", trt or "not installed"),
        ("CUDA / cuDNN", f"{v.get('cuda') or 'not installed'} / {v.get('cudnn') or 'not installed'}"),
        ("OpenCV", _opencv(v)),
        ("Python", _python(v, notes)),
        (
            "free disk",
            f"{_size(disk['free_bytes'])} of {_size(disk['total_bytes'])} on {disk['mount']}"
            if disk
            else "?",
        ),
        (
            "power mode",
            f"{mode['name']} (id {mode['id']})" if mode else f"— ({notes.get('power_mode', '?')})",
        ),
    ]
