"""Capture TensorRT's log: keep the lines that matter for error messages and reports.

:class:`LogTail` is pure (tested here); :func:`make_trt_logger` wraps it in a
``tensorrt.ILogger`` subclass created inside the function, so importing this module never
needs TensorRT.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple, Union

from edgeagent.backends.base import BackendError

__all__ = ["SEVERITIES", "LogArg", "LogTail", "TrtError", "as_log_tail", "make_trt_logger"]

SEVERITIES = ("internal_error", "error", "warning", "info", "verbose")
"""TensorRT ``ILogger.Severity`` names, indexed by the enum's integer value (0 = worst)."""

_TAGS = {"internal_error": "F", "error": "E", "warning": "W", "info": "I", "verbose": "V"}
_PY_LEVELS = {
    "internal_error": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "verbose": logging.DEBUG,
}
_log = logging.getLogger("edgeagent.tensorrt")


class TrtError(BackendError):
    """A TensorRT build, load or run failed; ``log_lines`` holds its last warnings/errors."""

    def __init__(self, message: str, log_lines: Optional[List[str]] = None) -> None:
        self.log_lines = list(log_lines or [])
        detail = "".join("\n  " + line for line in self.log_lines)
        super().__init__(
            message + (f"\nTensorRT log (last {len(self.log_lines)} lines):{detail}" if detail else "")
        )


class LogTail:
    """The last ``keep`` TensorRT log lines at ``level`` or worse.

    Args:
        keep: lines kept (older ones drop off).
        level: least severe level kept: ``error``, ``warning`` (default), ``info`` or ``verbose``.
        sink: optional ``callback(severity, message)`` for every kept line (e.g. to stream
            agent log events).
    """

    def __init__(
        self, keep: int = 40, level: str = "warning", sink: Optional[Callable[[str, str], None]] = None
    ) -> None:
        if level not in SEVERITIES:
            raise ValueError(f"log level {level!r}: expected one of {', '.join(SEVERITIES)}")
        self.level = level
        self.sink = sink
        self._threshold = SEVERITIES.index(level)
        self._lines: Deque[Tuple[str, str]] = deque(maxlen=max(1, keep))
        self.counts = {name: 0 for name in SEVERITIES}

    def add(self, severity: Any, message: str) -> None:
        """Record one line; ``severity`` is a name from :data:`SEVERITIES` or its integer value."""
        name = SEVERITIES[int(severity)] if not isinstance(severity, str) else severity
        if name not in SEVERITIES:
            name = "info"
        self.counts[name] += 1
        _log.log(_PY_LEVELS[name], "%s", message)
        if SEVERITIES.index(name) <= self._threshold:
            self._lines.append((name, message.rstrip()))
            if self.sink is not None:
                self.sink(name, message.rstrip())

    def lines(self, worst_first: bool = False) -> List[str]:
        """Kept lines as ``"[E] message"``; errors before warnings when ``worst_first``."""
        items = list(self._lines)
        if worst_first:
            items.sort(key=lambda item: SEVERITIES.index(item[0]))  # stable: keeps time order within a level
        return [format_line(name, message) for name, message in items]

    def errors(self) -> List[str]:
        """Kept lines at error level or worse."""
        return [line for line in self.lines() if line[1] in ("E", "F")]

    def error(self, message: str) -> TrtError:
        """A :class:`TrtError` carrying this tail's lines (errors first)."""
        return TrtError(message, self.lines(worst_first=True))

    def clear(self) -> None:
        self._lines.clear()
        self.counts = {name: 0 for name in SEVERITIES}


def format_line(severity: str, message: str) -> str:
    """``"[W] message"``: one-letter severity tag (F, E, W, I, V) and the message."""
    return f"[{_TAGS.get(severity, 'I')}] {message}"


LogArg = Union[LogTail, Callable[[str], None], None]
"""What ``log=`` accepts: a :class:`LogTail`, a ``callback(line)``, or None."""


def as_log_tail(log: LogArg) -> LogTail:
    """A :class:`LogTail` for ``log``: itself, a new one, or one forwarding ``"[W] …"`` lines to a callback.

    Raises:
        TypeError: ``log`` is neither a LogTail, a callable nor None.
    """
    if log is None:
        return LogTail()
    if isinstance(log, LogTail):
        return log
    if callable(log):
        callback = log
        return LogTail(sink=lambda severity, message: callback(format_line(severity, message)))
    raise TypeError(f"log must be a LogTail, a callable(line) or None, not {type(log).__name__}")


def make_trt_logger(tail: LogTail) -> Any:
    """A ``tensorrt.ILogger`` that feeds ``tail`` (the subclass is defined here, lazily).

    Raises:
        BackendError: TensorRT is not installed.
    """
    try:
        import tensorrt as trt
    except ImportError as err:
        raise BackendError(NO_TENSORRT) from err

    class _TailLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            tail.add(int(severity), str(msg))

    return _TailLogger()


NO_TENSORRT = (
    "the trt backend needs TensorRT's Python bindings (python3 -c 'import tensorrt'): on a Jetson they "
    "come with JetPack (sudo apt install python3-libnvinfer); elsewhere use --backend ort"
)
