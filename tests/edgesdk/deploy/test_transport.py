"""quote_argv (through real POSIX shells), Result, CommandStream."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgesdk.deploy.transport import CommandStream, Result, quote_arg, quote_argv
from edgesdk.errors import CommandFailed, EdgeSdkInternalError, RemoteError
from tests.edgesdk.deploy._hostile import HOSTILE

SHELLS = [s for s in ("sh", "bash", "dash", "zsh", "busybox") if shutil.which(s)]


def test_safe_words_stay_bare_and_others_are_single_quoted() -> None:
    assert quote_argv(["python3", "edgeagent.pyz", "info", "--json", "/a/b-c_d.e:f,g@h%i+j=k"]) == (
        "python3 edgeagent.pyz info --json /a/b-c_d.e:f,g@h%i+j=k"
    )
    assert quote_arg("") == "''"
    assert quote_arg("it's") == "'it'\"'\"'s'"
    assert quote_arg("[127.0.0.1]:2222") == "'[127.0.0.1]:2222'"


@pytest.mark.parametrize("shell", SHELLS)
def test_every_hostile_argument_survives_a_real_shell(shell: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    names = [*HOSTILE, f"$(touch {marker})", f"`touch {marker}`"]
    argv = [shell, "-c", "printf '%s\\0' " + quote_argv(names)] if shell != "busybox" else None
    if argv is None:
        argv = ["busybox", "sh", "-c", "printf '%s\\0' " + quote_argv(names)]
    out = subprocess.run(argv, capture_output=True, check=True, timeout=30)
    assert out.stdout == b"".join(n.encode() + b"\0" for n in names)
    assert not marker.exists()


def test_unquotable_input_is_refused() -> None:
    with pytest.raises(RemoteError, match="NUL"):
        quote_argv(["echo", "a\x00b"])
    with pytest.raises(EdgeSdkInternalError):
        quote_argv([])
    with pytest.raises(EdgeSdkInternalError):
        quote_argv("echo hello")  # a string is not an argv list


def test_result_check() -> None:
    ok = Result(0, "héllo\n".encode(), b"")
    assert ok.check(["echo"], "dev") is ok and ok.text == "héllo\n"
    failed = Result(2, b"", b"first\nlast line\n")
    with pytest.raises(CommandFailed, match=r"`ls 'a b'` failed on dev with exit 2: last line"):
        failed.check(["ls", "a b"], "dev")


def _stream(chunks: list[tuple[int, bytes]], status: int = 0) -> tuple[CommandStream, list[str]]:
    closed: list[str] = []
    return CommandStream(iter(chunks), lambda: status, lambda: closed.append("closed")), closed


def test_stream_splits_lines_across_chunks() -> None:
    stream, closed = _stream([(1, b"one\r\ntw"), (2, b"err1\n"), (1, b"o\nthree"), (2, b"err2")], status=5)
    assert list(stream) == ["one", "two", "three"]
    assert stream.result == Result(5, b"", b"err1\nerr2") and closed == ["closed"]


def test_stream_close_early() -> None:
    stream, closed = _stream([(1, b"a\nb\n")])
    with stream:
        assert next(stream) == "a"
    assert closed == ["closed"] and stream.result is None
