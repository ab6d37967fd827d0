"""SSHTransport against a REAL OpenSSH sshd on 127.0.0.1 (tests/sshd_fixture.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgesdk.deploy.hostkeys import known_hosts_name
from edgesdk.deploy.ssh import SSHTransport, parse_jump, ssh_config_lookup
from edgesdk.errors import (
    AuthFailed,
    ChangedHostKey,
    CommandTimeout,
    ConnectionFailed,
    InventoryError,
    RemoteError,
    UnknownHostKey,
)
from tests.edgesdk.deploy._hostile import HOSTILE
from tests.sshd_fixture import ClientEnv, SshServer


def _transport(server: SshServer, **kwargs: object) -> SSHTransport:
    options: dict = dict(
        port=server.port, user=server.user, key=server.client_key, use_agent=False, label="testdev"
    )
    options.update(kwargs)
    return SSHTransport(server.host, **options)


def _fingerprint(server: SshServer) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(server.host_key.with_suffix(".pub"))], capture_output=True)
    return out.stdout.decode().split()[1]


class TestHostKeys:
    def test_unknown_key_is_refused_with_both_remedies(
        self, sshd: SshServer, ssh_client_env: ClientEnv
    ) -> None:
        with pytest.raises(UnknownHostKey) as info, _transport(sshd) as t:
            t.run(["true"])
        message, hint = str(info.value), info.value.hint or ""
        assert f"[127.0.0.1]:{sshd.port}" in message and _fingerprint(sshd) in message
        assert "edgesdk devices check testdev --accept-new" in hint
        assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts" in hint
        assert not ssh_client_env.known_hosts.exists()  # nothing stored without accept_new

    def test_keyscan_remedy_works_as_printed(self, sshd: SshServer, ssh_client_env: ClientEnv) -> None:
        with pytest.raises(UnknownHostKey) as info, _transport(sshd) as t:
            t.run(["true"])
        command = (info.value.hint or "").split("or `")[-1].rstrip("`")
        subprocess.run(["sh", "-c", command], check=True, capture_output=True, env=os.environ.copy())
        assert ssh_client_env.user_known_hosts.read_text().strip()
        with _transport(sshd) as t:
            assert t.run(["true"]).ok

    def test_accept_new_stores_in_edgesdk_file_only(self, sshd: SshServer, ssh_client_env: ClientEnv) -> None:
        with _transport(sshd, accept_new=True) as t:
            assert t.run(["true"]).ok
        stored = ssh_client_env.known_hosts.read_text()
        assert stored.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
        assert stored.split()[2] == sshd.known_hosts_line().split()[2]
        assert not ssh_client_env.user_known_hosts.exists()
        with _transport(sshd) as t:  # now known: strict mode connects
            assert t.run(["true"]).ok
        assert ssh_client_env.known_hosts.read_text() == stored  # not stored twice

    def test_changed_key_is_always_refused(self, sshd_private: SshServer, ssh_client_env: ClientEnv) -> None:
        with _transport(sshd_private, accept_new=True) as t:
            t.run(["true"])
        sshd_private.rotate_host_key()
        for accept_new in (False, True):
            with pytest.raises(ChangedHostKey) as info, _transport(sshd_private, accept_new=accept_new) as t:
                t.run(["true"])
        name = f"[127.0.0.1]:{sshd_private.port}"
        assert "CHANGED" in str(info.value) and _fingerprint(sshd_private) in str(info.value)
        remove = f"ssh-keygen -R '{name}' -f {ssh_client_env.known_hosts}"
        assert remove in (info.value.hint or "")
        subprocess.run(["sh", "-c", remove], check=True, capture_output=True)
        with _transport(sshd_private, accept_new=True) as t:
            assert t.run(["true"]).ok

    def test_known_hosts_names(self) -> None:
        assert known_hosts_name("jetson", 22) == "jetson"
        assert known_hosts_name("10.0.0.2", 2222) == "[10.0.0.2]:2222"


class TestAuthAndConnect:
    def test_connection_refused_names_host_and_port(self, ssh_client_env: ClientEnv) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(ConnectionFailed) as info, SSHTransport(
            "127.0.0.1", port=port, use_agent=False
        ) as t:
            t.run(["true"])
        assert f"127.0.0.1:{port}" in str(info.value) and "refused" in str(info.value)

    def test_unknown_host_name(self, ssh_client_env: ClientEnv) -> None:
        with pytest.raises(ConnectionFailed, match="resolve"), SSHTransport("no-such-host.invalid") as t:
            t.run(["true"])

    def test_unauthorised_key_is_auth_failed(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        other = tmp_path / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        with pytest.raises(AuthFailed) as info, _transport(trusted_sshd, key=other) as t:
            t.run(["true"])
        assert f"127.0.0.1:{trusted_sshd.port}" in str(info.value)
        assert "ssh-copy-id" in (info.value.hint or "")

    def test_missing_key_file(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        with pytest.raises(AuthFailed, match="does not exist"), _transport(
            trusted_sshd, key=tmp_path / "nope"
        ) as t:
            t.run(["true"])

    def test_password_never_in_message_or_log(
        self, trusted_sshd: SshServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        secret = "hunter2-Sup3rSecret"
        caplog.set_level(logging.DEBUG)
        with pytest.raises(AuthFailed) as info, _transport(trusted_sshd, key=None, password=secret) as t:
            t.run(["true"])
        assert "a password" in str(info.value)
        for text in (str(info.value), info.value.hint or "", repr(info.value), caplog.text, repr(t)):
            assert secret not in text

    def test_encrypted_key_passphrase_never_in_message(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        key = tmp_path / "encrypted"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "right-phrase", "-f", str(key)], check=True
        )
        with pytest.raises(AuthFailed, match="encrypted"), _transport(trusted_sshd, key=key) as t:
            t.run(["true"])
        wrong = "wrong-Passphrase-42"
        with pytest.raises(AuthFailed) as info, _transport(trusted_sshd, key=key, passphrase=wrong) as t:
            t.run(["true"])
        assert "wrong passphrase?" in str(info.value)
        assert wrong not in str(info.value) and wrong not in (info.value.hint or "")


class TestCommands:
    def test_hostile_arguments_arrive_byte_for_byte(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        marker = tmp_path / "pwned"
        names = [*HOSTILE, f"$(touch {marker})", f"`touch {marker}`;touch {marker}"]
        with _transport(trusted_sshd) as t:
            result = t.run(["printf", "%s\\0", *names])
            echoed = t.run(
                [sys.executable, "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *names]
            )
        assert result.ok, result.stderr
        assert result.stdout == b"".join(n.encode() + b"\0" for n in names)
        assert json.loads(echoed.stdout) == names
        assert not marker.exists()

    def test_hostile_file_names_put_run_get(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        folder = trusted_sshd.home / "hostile"
        folder.mkdir(exist_ok=True)
        with _transport(trusted_sshd) as t:
            for index, name in enumerate(n for n in HOSTILE if n and "/" not in n):
                source = tmp_path / f"src{index}"
                source.write_bytes(name.encode() * 3)
                remote = f"hostile/{name}"
                t.put(source, remote)
                assert t.run(["cat", str(folder / name)]).stdout == name.encode() * 3
                t.get(remote, tmp_path / f"back{index}")
                assert (tmp_path / f"back{index}").read_bytes() == name.encode() * 3

    def test_exit_status_stderr_missing_program(self, trusted_sshd: SshServer) -> None:
        with _transport(trusted_sshd) as t:
            failed = t.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
            missing = t.run(["edgesdk-no-such-program"])
        assert (failed.exit, failed.stdout, failed.stderr) == (7, b"out\n", b"err\n")
        assert missing.exit == 127

    def test_stdin_larger_than_the_window(self, trusted_sshd: SshServer) -> None:
        data = os.urandom(4 << 20)
        with _transport(trusted_sshd) as t:
            result = t.run(["cat"], stdin=data)
        assert result.ok and result.stdout == data

    def test_home_is_the_device_home(self, trusted_sshd: SshServer) -> None:
        from edgesdk.deploy.transport import remote_home

        with _transport(trusted_sshd) as t:
            assert remote_home(t) == str(trusted_sshd.home)

    def test_timeout(self, trusted_sshd: SshServer) -> None:
        with _transport(trusted_sshd) as t:
            t.run(["true"])
            start = time.monotonic()
            with pytest.raises(CommandTimeout):
                t.run(["sleep", "10"], timeout=0.5)
            assert time.monotonic() - start < 3
            assert t.run(["echo", "still usable"]).stdout == b"still usable\n"

    def test_run_stream_lines_arrive_as_printed(self, trusted_sshd: SshServer) -> None:
        script = "echo '{\"event\": 1}'; echo warn >&2; sleep 1; printf 'last-no-newline'; exit 4"
        with _transport(trusted_sshd) as t:
            stream = t.run_stream(["sh", "-c", script])
            start = time.monotonic()
            first = next(stream)
            first_at = time.monotonic() - start
            rest = list(stream)
        assert json.loads(first) == {"event": 1} and first_at < 0.9
        assert rest == ["last-no-newline"]
        assert stream.result is not None and stream.result.exit == 4 and stream.result.stderr == b"warn\n"


class TestFiles:
    def test_20mb_round_trip_with_progress(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(20 * 1024 * 1024))
        seen: list[tuple[int, int]] = []
        with _transport(trusted_sshd) as t:
            t.put(source, "big.bin", progress=lambda done, total: seen.append((done, total)))
            t.get("big.bin", tmp_path / "back.bin")
            remote_sum = t.run(["sha256sum", str(trusted_sshd.home / "big.bin")]).text.split()[0]
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest == remote_sum
        assert seen[-1] == (source.stat().st_size, source.stat().st_size)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert not (tmp_path / "back.bin.part").exists()

    def test_missing_remote_folder_and_file(self, trusted_sshd: SshServer, tmp_path: Path) -> None:
        source = tmp_path / "f"
        source.write_bytes(b"x")
        with _transport(trusted_sshd) as t:
            with pytest.raises(RemoteError, match="no-such-dir"):
                t.put(source, "no-such-dir/f")
            with pytest.raises(RemoteError, match="no-such-file"):
                t.get("no-such-file", tmp_path / "g")
        assert not (tmp_path / "g").exists() and not (tmp_path / "g.part").exists()

    def test_connection_killed_mid_put(
        self, sshd_private: SshServer, ssh_client_env: ClientEnv, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(16 * 1024 * 1024))
        assert sshd_private.proc is not None
        listener = sshd_private.proc.pid

        def kill_sessions(done: int, total: int) -> None:
            if done > 4 * 1024 * 1024:
                out = subprocess.run(["pgrep", "-P", str(listener)], capture_output=True, text=True)
                for pid in out.stdout.split():
                    os.kill(int(pid), signal.SIGKILL)

        with _transport(sshd_private, accept_new=True) as t:
            t.run(["true"])
            with pytest.raises(ConnectionFailed, match="lost the connection"):
                t.put(source, "big.bin", progress=kill_sessions)
            assert t.run(["echo", "reconnected"]).stdout == b"reconnected\n"  # next use reconnects


class TestSshConfig:
    def test_alias_lookup_and_proxy_jump(self, trusted_sshd: SshServer, ssh_client_env: ClientEnv) -> None:
        s = trusted_sshd
        ssh_client_env.ssh_config.write_text(
            f"Host jumpbox\n  HostName {s.host}\n  Port {s.port}\n  User {s.user}\n  IdentityFile {s.client_key}\n"
            "Host *.lab\n  User nvidia\n"
        )
        found = ssh_config_lookup("jumpbox")
        assert found is not None and found.explicit
        assert (found.hostname, found.port, found.user, found.identity_file) == (
            s.host,
            s.port,
            s.user,
            str(s.client_key),
        )
        wildcard = ssh_config_lookup("x.lab")
        assert wildcard is not None and not wildcard.explicit and wildcard.user == "nvidia"
        with _transport(s, proxy_jump="jumpbox") as t:
            assert t.run(["echo", "via jump"]).stdout == b"via jump\n"
            assert type(t._ssh.get_transport().sock).__name__ == "Channel"  # tunnelled, not a socket

    def test_parse_jump(self) -> None:
        assert parse_jump("gw") == (None, "gw", None)
        assert parse_jump("me@gw:2200") == ("me", "gw", 2200)
        assert parse_jump("ssh://me@[fe80::1]:22") == ("me", "fe80::1", 22)
        with pytest.raises(InventoryError):
            parse_jump("me@gw:abc")
