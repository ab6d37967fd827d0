"""LocalTransport: the built-in `local` device, behaving like the SSH transport."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edgesdk.deploy.local import LocalTransport
from edgesdk.deploy.transport import Transport, remote_home
from edgesdk.errors import ArtifactNotFound, CommandTimeout, RemoteError
from tests.edgesdk.deploy._hostile import HOSTILE


@pytest.fixture()
def local(tmp_path: Path) -> LocalTransport:
    home = tmp_path / "home"
    home.mkdir()
    return LocalTransport(home=home)


def test_is_a_transport(local: LocalTransport) -> None:
    assert isinstance(local, Transport) and local.name == "local"


def test_run_in_home_with_stdin_and_statuses(local: LocalTransport, tmp_path: Path) -> None:
    assert local.run(["pwd"]).stdout.decode().strip() == str(tmp_path / "home")
    assert remote_home(local) == str(tmp_path / "home")
    assert local.run(["cat"], stdin=b"bytes\x00in").stdout == b"bytes\x00in"
    failed = local.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (failed.exit, failed.stdout, failed.stderr) == (3, b"out\n", b"err\n")
    missing = local.run(["edgesdk-no-such-program", "x"])
    assert missing.exit == 127 and b"command not found" in missing.stderr
    script = tmp_path / "home" / "not-executable"
    script.write_text("#!/bin/sh\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert local.run([str(script)]).exit == 126


def test_arguments_are_not_interpreted(local: LocalTransport) -> None:
    out = local.run(["printf", "%s\\0", *HOSTILE])
    assert out.stdout == b"".join(n.encode() + b"\0" for n in HOSTILE)


def test_timeout(local: LocalTransport) -> None:
    with pytest.raises(CommandTimeout):
        local.run(["sleep", "5"], timeout=0.3)
    stream = local.run_stream(["sh", "-c", "echo first; sleep 5"], timeout=0.5)
    assert next(stream) == "first"
    with pytest.raises(CommandTimeout):
        next(stream)


def test_run_stream(local: LocalTransport) -> None:
    stream = local.run_stream(["sh", "-c", "echo a; echo warn >&2; printf b; exit 2"])
    assert list(stream) == ["a", "b"]
    assert stream.result is not None and (stream.result.exit, stream.result.stderr) == (2, b"warn\n")
    missing = local.run_stream(["edgesdk-no-such-program"])
    assert list(missing) == [] and missing.result is not None and missing.result.exit == 127


def test_put_get_round_trip(local: LocalTransport, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    seen: list[tuple[int, int]] = []
    local.put(source, "copy.bin", progress=lambda d, t: seen.append((d, t)))
    assert (tmp_path / "home" / "copy.bin").read_bytes() == source.read_bytes()
    assert seen[-1] == (source.stat().st_size,) * 2 and len(seen) == 4
    local.get("copy.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert not (tmp_path / "back.bin.part").exists()


def test_put_get_errors(local: LocalTransport, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound):
        local.put(tmp_path / "missing", "x")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(RemoteError, match="no-dir"):
        local.put(tmp_path / "f", "no-dir/f")
    with pytest.raises(RemoteError, match="nothing-here"):
        local.get("nothing-here", tmp_path / "g")


def test_missing_home_is_named_not_command_not_found(tmp_path: Path) -> None:
    gone = LocalTransport(tmp_path / "no-such-home")
    with pytest.raises(RemoteError, match="home folder .*no-such-home does not exist"):
        gone.run(["true"])
    with pytest.raises(RemoteError, match="does not exist"):
        gone.run_stream(["true"])
