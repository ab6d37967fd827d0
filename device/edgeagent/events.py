"""The agent's output protocol: one JSON object per line on stdout.

Kinds: ``progress`` (phase, done, total), ``log`` (level, message), ``result`` (command, data),
``error`` (kind, message, hint). The host renders them; humans can read them too.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any, Dict, Optional

# exit codes the host relies on
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_DEPENDENCY = 3
EXIT_BUILD_FAILED = 4


class AgentError(Exception):
    """A failure the agent reports as an ``error`` event with an exit code."""

    exit_code = EXIT_FAILED
    kind = "AgentError"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class BadInput(AgentError):
    exit_code = EXIT_BAD_INPUT
    kind = "BadInput"


class MissingDependency(AgentError):
    exit_code = EXIT_MISSING_DEPENDENCY
    kind = "MissingDependency"


class BuildFailed(AgentError):
    exit_code = EXIT_BUILD_FAILED
    kind = "BuildFailed"


class Emitter:
    """Writes events as JSON lines (``--json``) or as short human lines."""

    def __init__(self, as_json: bool = True, stream: Optional[IO[str]] = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self._last_progress = 0.0

    def _write(self, event: Dict[str, Any]) -> None:
        if self.as_json:
            self.stream.write(json.dumps(event, default=str, separators=(",", ":")) + "\n")
        else:
            self.stream.write(_human(event) + "\n")
        self.stream.flush()

    def progress(self, phase: str, done: int, total: Optional[int] = None, force: bool = False) -> None:
        """Report progress; rate-limited to 10 per second unless ``force`` or finished."""
        now = time.monotonic()
        if not force and total is not None and done < total and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        self._write({"event": "progress", "phase": phase, "done": done, "total": total})

    def log(self, message: str, level: str = "info") -> None:
        self._write({"event": "log", "level": level, "message": message})

    def event(self, kind: str, data: Dict[str, Any]) -> None:
        """Any other event kind (``stats`` from a running pipeline, ``sink``, ``source``)."""
        payload = {"event": kind}
        payload.update(data)
        self._write(payload)

    def result(self, command: str, data: Dict[str, Any]) -> None:
        self._write({"event": "result", "command": command, "data": data})

    def error(self, err: AgentError) -> None:
        self._write({"event": "error", "kind": err.kind, "message": str(err), "hint": err.hint})


def _human(event: Dict[str, Any]) -> str:
    kind = event["event"]
    if kind == "progress":
        total = event.get("total")
        return "[{}] {}{}".format(event["phase"], event["done"], f"/{total}" if total else "")
    if kind == "log":
        return "{}: {}".format(event["level"], event["message"])
    if kind == "error":
        hint = " (hint: {})".format(event["hint"]) if event.get("hint") else ""
        return "error: {}{}".format(event["message"], hint)
    if kind == "stats":
        stages = event.get("stage_ms") or {}
        parts = "  ".join(f"{k} {v or 0.0:.1f} ms" for k, v in stages.items())
        return "fps {:.1f}  frames {}  dropped {}  {}".format(
            event.get("fps") or 0.0, event.get("frames_out", "?"), event.get("dropped", 0), parts
        )
    if kind in ("sink", "source"):
        return "{}: {}".format(kind, event.get("url") or event.get("message") or event)
    return json.dumps(event.get("data", event), indent=2, default=str)
