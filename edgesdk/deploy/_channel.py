"""Read one SSH exec channel to the end: stdout and stderr together, stdin fed alongside.

Works on paramiko ``Channel`` objects by duck typing, so this module does not import
paramiko (``ssh.py`` stays the only one that does).
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from edgesdk.deploy.transport import quote_argv
from edgesdk.errors import CommandTimeout

_BUF = 1 << 16
_POLL = 1.0  # seconds: upper bound on one wait, so a silently dead connection is noticed


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic time ``timeout`` seconds from now (None: no deadline)."""
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None, argv: Sequence[str], where: str) -> float:
    if deadline is None:
        return _POLL
    left = deadline - time.monotonic()
    if left <= 0:
        raise CommandTimeout(
            f"`{quote_argv(argv)}` did not finish in time on {where} (it may still be running there)",
            hint="raise the timeout, or check on the device what the command waits for",
        )
    return min(left, _POLL)


def _feed(channel: Any, data: bytes) -> None:
    try:
        channel.sendall(data)
        channel.shutdown_write()
    except Exception:  # the command stopped reading; its exit status says what happened
        pass


def pump(
    channel: Any, stdin: bytes | None, deadline: float | None, argv: Sequence[str], where: str
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(1, data)`` for stdout and ``(2, data)`` for stderr until the command closes both.

    ``stdin`` is written from a helper thread (so a command that writes before it reads
    cannot deadlock us), then closed; None closes stdin at once.

    Raises:
        CommandTimeout: the deadline passed first.
        EOFError: the connection dropped.
    """
    if stdin:
        threading.Thread(target=_feed, args=(channel, stdin), daemon=True).start()
    else:
        channel.shutdown_write()
    while True:
        while channel.recv_stderr_ready():
            yield 2, channel.recv_stderr(_BUF)
        if channel.recv_ready():
            data = channel.recv(_BUF)
            if data:
                yield 1, data
                continue
        if channel.eof_received or channel.closed:
            if channel.recv_ready() or channel.recv_stderr_ready():
                continue
            return
        if not channel.get_transport().is_active():
            raise EOFError("connection closed")
        select.select([channel], [], [], _remaining(deadline, argv, where))


def exit_status(channel: Any, deadline: float | None, argv: Sequence[str], where: str) -> int:
    """Wait for the command's exit status.

    A command killed by a signal has no exit status; like OpenSSH's client we report 255.

    Raises:
        CommandTimeout: the deadline passed first.
        EOFError: the connection dropped before the status arrived.
    """
    while not channel.status_event.wait(_remaining(deadline, argv, where)):
        if channel.closed:
            break
        if not channel.get_transport().is_active():
            raise EOFError("connection closed before the command's exit status arrived")
    if not channel.status_event.is_set():
        return 255
    status = int(channel.exit_status)
    return 255 if status < 0 else status
