"""The built-in ``local`` device: this machine, through subprocess, with no SSH at all.

It behaves like :class:`~edgesdk.deploy.ssh.SSHTransport` where it matters to callers:
commands start in the home directory (``home``), relative paths are resolved against it,
and a missing program gives exit status 127 rather than an exception.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from edgesdk.deploy.transport import CommandStream, ProgressCallback, Result, quote_argv
from edgesdk.errors import ArtifactNotFound, CommandTimeout, RemoteError

_CHUNK = 1 << 20  # bytes per copy step: progress granularity


class LocalTransport:
    """Run commands and copy files on this machine.

    Args:
        home: working directory for commands, base of relative paths, and ``$HOME`` of
            the commands (default: the real home, ``~``; tests pass a temporary folder).
    """

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self._home = Path(home) if home is not None else Path.home()
        self._env = None if home is None else {**os.environ, "HOME": str(self._home)}

    @property
    def name(self) -> str:
        return "local"

    def _path(self, path: str | os.PathLike[str]) -> Path:
        return self._home / Path(path).expanduser()

    def _cwd(self) -> Path:
        """The home folder commands start in (a missing one would read as "command not found")."""
        if not self._home.is_dir():
            raise RemoteError(
                f"local: the home folder {self._home} does not exist (the agent lives in <home>/.edgeagent)",
                hint="set HOME to an existing folder",
            )
        return self._home

    def run(self, argv: Sequence[str], *, timeout: float | None = None, stdin: bytes | None = None) -> Result:
        argv = list(argv)
        quote_argv(argv)  # same argument checks as over SSH (no NUL bytes, non-empty)
        try:
            done = subprocess.run(
                argv, input=stdin or b"", capture_output=True, timeout=timeout, cwd=self._cwd(), env=self._env
            )
        except subprocess.TimeoutExpired as err:
            raise CommandTimeout(
                f"`{quote_argv(argv)}` did not finish within {timeout:g} s on local",
                hint="raise the timeout, or check what the command waits for",
            ) from err
        except OSError as err:
            return _not_started(argv, err)
        return Result(done.returncode, done.stdout, done.stderr)

    def run_stream(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandStream:
        argv = list(argv)
        quote_argv(argv)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self._cwd(),
                env=self._env,
            )
        except OSError as err:
            result = _not_started(argv, err)
            return CommandStream(iter([(2, result.stderr)]), lambda: result.exit, lambda: None)
        deadline = None if timeout is None else time.monotonic() + timeout
        return CommandStream(_pump(proc, argv, deadline, timeout), proc.wait, lambda: _stop(proc))

    def put(
        self, local: str | os.PathLike[str], remote: str, *, progress: ProgressCallback | None = None
    ) -> None:
        source = Path(local)
        if not source.is_file():
            raise ArtifactNotFound(f"cannot send {source}: no such file")
        _copy(source, self._path(remote), progress, where=f"local:{remote}")

    def get(self, remote: str, local: str | os.PathLike[str]) -> None:
        source = self._path(remote)
        if not source.is_file():
            raise RemoteError(f"cannot fetch {remote} from local: no such file")
        target = Path(local)
        partial = target.with_name(target.name + ".part")
        _copy(source, partial, None, where=str(target))
        os.replace(partial, target)

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalTransport(home={str(self._home)!r})"


def _not_started(argv: list[str], err: OSError) -> Result:
    """What a POSIX shell reports when it cannot start a program: 127 missing, 126 not executable."""
    status = 127 if isinstance(err, FileNotFoundError) else 126
    reason = "command not found" if status == 127 else (err.strerror or str(err))
    return Result(status, b"", f"{argv[0]}: {reason}\n".encode())


def _pump(
    proc: subprocess.Popen[bytes], argv: list[str], deadline: float | None, timeout: float | None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(1, data)`` / ``(2, data)`` chunks from both pipes until both close."""
    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, 1)
    selector.register(proc.stderr, selectors.EVENT_READ, 2)
    try:
        while selector.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                _stop(proc)
                raise CommandTimeout(f"`{quote_argv(argv)}` did not finish within {timeout:g} s on local")
            for key, _ in selector.select(wait):
                data = os.read(key.fd, 65536)
                if data:
                    yield key.data, data
                else:
                    selector.unregister(key.fileobj)
    finally:
        selector.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _copy(source: Path, target: Path, progress: ProgressCallback | None, where: str) -> None:
    total = source.stat().st_size
    done = 0
    try:
        with source.open("rb") as src, target.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except OSError as err:
        raise RemoteError(f"cannot write {where}: {err.strerror or err}") from err
    if progress is not None and total == 0:
        progress(0, 0)
