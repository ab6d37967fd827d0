"""The one connection protocol every deploy step talks to, and the one argv quoting function.

Two implementations: :class:`edgesdk.deploy.local.LocalTransport` (this machine, subprocess)
and :class:`edgesdk.deploy.ssh.SSHTransport` (paramiko). Both behave the same way:

* commands are argv lists, never shell strings; over SSH the remote login shell receives
  :func:`quote_argv` of the list, so every argument arrives byte for byte;
* commands start in the user's home directory; relative paths given to ``put``/``get``
  are relative to it too;
* a command that cannot be found exits 127 (like a POSIX shell), it does not raise.

A transport is used from one thread at a time; open one per device per thread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edgesdk.errors import CommandFailed, EdgeSdkInternalError, RemoteError

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while a file is transferred."""

# Characters that never need quoting in a POSIX shell word.
_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def quote_arg(arg: str | os.PathLike[str]) -> str:
    """Quote one argument so a POSIX shell reads it back unchanged.

    Safe words are returned as they are; anything else is put in single quotes, with
    each embedded single quote written as ``'"'"'``. Newlines, ``$()``, backticks, ``;``
    and non-ASCII text need nothing more inside single quotes.

    Raises:
        RemoteError: the argument contains a NUL byte, which no command line can carry.
    """
    text = os.fspath(arg)
    if not isinstance(text, str):
        raise EdgeSdkInternalError(f"argv items must be str or PathLike[str], got {type(arg).__name__}")
    if "\x00" in text:
        raise RemoteError(f"argument {text[:40]!r}… contains a NUL byte, which cannot be passed to a command")
    if text and _SAFE.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def quote_argv(argv: Sequence[str | os.PathLike[str]]) -> str:
    """Join an argv list into one POSIX shell command line (the only place commands are quoted).

    Args:
        argv: program and arguments, e.g. ``["python3", "edgeagent.pyz", "info", "--json"]``.

    Returns:
        A command line whose words, after shell parsing, are exactly ``argv``.
    """
    if isinstance(argv, (str, bytes)) or not argv:
        raise EdgeSdkInternalError(f"argv must be a non-empty list of arguments, got {argv!r}")
    return " ".join(quote_arg(a) for a in argv)


@dataclass(frozen=True)
class Result:
    """What a finished command left behind.

    Attributes:
        exit: exit status (127: command not found; negative: killed by that signal, local only).
        stdout: everything it wrote on standard output, as bytes.
        stderr: everything it wrote on standard error, as bytes.
    """

    exit: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """Whether the command exited 0."""
        return self.exit == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")

    @property
    def error_text(self) -> str:
        """stderr decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stderr.decode("utf-8", "replace")

    def check(self, argv: Sequence[str], where: str) -> Result:
        """Return self when the command succeeded.

        Raises:
            CommandFailed: exit status non-zero; the message names the command, the device
                and the last line of stderr.
        """
        if self.ok:
            return self
        last = (self.error_text.strip().splitlines() or ["(no output on stderr)"])[-1]
        raise CommandFailed(f"`{quote_argv(argv)}` failed on {where} with exit {self.exit}: {last}")


class CommandStream:
    """A running command's stdout, one line at a time (no trailing newline).

    Iterate it; once exhausted, :attr:`result` holds the exit status and all of stderr
    (``result.stdout`` is empty: the lines were handed out already). Close it (or use it
    as a context manager) to stop reading early.
    """

    def __init__(
        self, chunks: Iterator[tuple[int, bytes]], wait: Callable[[], int], close: Callable[[], None]
    ) -> None:
        self._chunks = chunks
        self._wait = wait
        self._close = close
        self._buffer = bytearray()
        self._stderr = bytearray()
        self._done = False
        self.result: Result | None = None

    def __iter__(self) -> CommandStream:
        return self

    def __next__(self) -> str:
        while True:
            cut = self._buffer.find(b"\n")
            if cut >= 0:
                line = bytes(self._buffer[:cut])
                del self._buffer[: cut + 1]
                return _decode_line(line)
            if self._done:
                raise StopIteration
            try:
                fd, data = next(self._chunks)
            except StopIteration:
                self._finish()
                if self._buffer:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    return _decode_line(line)
                raise
            (self._buffer if fd == 1 else self._stderr).extend(data)

    def _finish(self) -> None:
        self._done = True
        try:
            status = self._wait()
        finally:
            self._close()
        self.result = Result(status, b"", bytes(self._stderr))

    def close(self) -> None:
        """Stop reading; the command's channel or process is closed."""
        if not self._done:
            self._done = True
            self._close()

    def __enter__(self) -> CommandStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_line(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", "replace")


@runtime_checkable
class Transport(Protocol):
    """One device's connection: run commands, copy files. Connects lazily, on first use."""

    @property
    def name(self) -> str:
        """Who we talk to, for messages: ``user@host:port`` or ``local``."""
        ...

    def run(self, argv: Sequence[str], *, timeout: float | None = None, stdin: bytes | None = None) -> Result:
        """Run ``argv`` to completion and collect its output.

        Args:
            argv: program and arguments (quoted by :func:`quote_argv` where a shell is involved).
            timeout: seconds before :class:`~edgesdk.errors.CommandTimeout` is raised (None: wait).
            stdin: bytes fed to the command's standard input (then closed); None: empty input.
        """
        ...

    def run_stream(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandStream:
        """Start ``argv`` and iterate its stdout lines as they arrive (stdin is empty)."""
        ...

    def put(
        self, local: str | os.PathLike[str], remote: str, *, progress: ProgressCallback | None = None
    ) -> None:
        """Copy the local file ``local`` to ``remote`` (overwritten if present; its folder must exist)."""
        ...

    def get(self, remote: str, local: str | os.PathLike[str]) -> None:
        """Copy the device file ``remote`` to ``local`` (written to a temporary name, then renamed)."""
        ...

    def close(self) -> None:
        """Release the connection; safe to call twice. A later call reconnects."""
        ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...


def remote_home(transport: Transport) -> str:
    """The device user's home directory (``$HOME`` as commands see it), as an absolute path.

    Raises:
        CommandFailed: ``printenv HOME`` failed or printed nothing.
    """
    argv = ["printenv", "HOME"]
    home = transport.run(argv, timeout=30).check(argv, transport.name).text.strip()
    if not home.startswith("/"):
        raise CommandFailed(f"$HOME on {transport.name} is {home!r}, not an absolute path")
    return home
