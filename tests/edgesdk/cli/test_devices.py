"""`edgesdk devices add|list|remove|check`, against the real sshd fixture and `local`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from typer.testing import CliRunner

from edgesdk.cli.app import app
from tests import sshd_fixture
from tests.sshd_fixture import ClientEnv, SshServer

# the real-sshd fixtures (a conftest would import them; this folder's conftest is shared)
sshd = sshd_fixture.sshd
ssh_client_env = sshd_fixture.ssh_client_env
trusted_sshd = sshd_fixture.trusted_sshd


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["devices", *args])


def _add(server: SshServer, name: str = "jet", *extra: str):  # type: ignore[no-untyped-def]
    return _invoke(
        "add", name, "--host", server.host, "--port", str(server.port), "--user", server.user,
        "--key", str(server.client_key), *extra,
    )  # fmt: skip


def test_add_list_remove(ssh_client_env: ClientEnv) -> None:
    added = _invoke(
        "add", "jetson01", "--host", "192.168.1.20", "--user", "nvidia", "-g", "lab", "-g", "orin"
    )
    assert added.exit_code == 0, added.output
    assert "edgesdk devices check jetson01 --accept-new" in added.stderr
    listed = _invoke("list", "--json")
    assert listed.exit_code == 0
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["local"]["source"] == "builtin"
    assert rows["jetson01"] == {
        "name": "jetson01", "host": "192.168.1.20", "user": "nvidia", "port": None, "key": None,
        "python": "python3", "groups": ["lab", "orin"], "proxy_jump": None, "source": "inventory",
    }  # fmt: skip
    table = _invoke("list")
    assert "jetson01" in table.stdout and "192.168.1.20" in table.stdout
    # adding it again is refused, with the way to overwrite it; --replace changes it (e.g. its Python)
    again = _invoke("add", "jetson01", "--host", "192.168.1.20", "--python", "/usr/bin/python3.8")
    assert again.exit_code != 0 and "--replace" in (getattr(again.exception, "hint", None) or "")
    replaced = _invoke(
        "add", "jetson01", "--host", "192.168.1.20", "--python", "/usr/bin/python3.8", "--replace"
    )
    assert replaced.exit_code == 0, replaced.output
    rows = {row["name"]: row for row in json.loads(_invoke("list", "--json").stdout)}
    assert rows["jetson01"]["python"] == "/usr/bin/python3.8"
    assert _invoke("remove", "jetson01").exit_code == 0
    assert [r["name"] for r in json.loads(_invoke("list", "--json").stdout)] == ["local"]


def test_user_errors_are_one_line_with_exit_2(ssh_client_env: ClientEnv) -> None:
    env = {**os.environ}
    for args in (
        ["add", "../evil", "--host", "h"],
        ["add", "ok", "--host", "-oProxyCommand=x"],
        ["remove", "ghost"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "edgesdk", "devices", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_check_local_json(ssh_client_env: ClientEnv) -> None:
    result = _invoke("check", "local", "--json")
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["device"] == "local" and report["ok"] and report["facts"]["jetson"] is False
    assert "not a Jetson" in report["facts"]["notes"]["l4t"]


def test_check_unknown_key_then_accept_new(sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    assert _add(sshd).exit_code == 0
    refused = _invoke("check", "jet")
    assert refused.exit_code == 1
    assert "unknown host key" in refused.stderr and "edgesdk devices check jet --accept-new" in refused.stderr
    accepted = _invoke("check", "jet", "--accept-new")
    assert accepted.exit_code == 0, accepted.output
    for label in ("L4T / JetPack", "not a Jetson", "free disk", "Python"):
        assert label in accepted.stdout
    assert ssh_client_env.known_hosts.read_text() == sshd.known_hosts_line()


def test_add_accept_new_records_the_key(sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    result = _add(sshd, "jet2", "--accept-new")
    assert result.exit_code == 0, result.output
    assert ssh_client_env.known_hosts.read_text() == sshd.known_hosts_line()
    assert "edgesdk devices check jet2" in result.stderr


def test_check_group_one_device_down(trusted_sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    assert _add(trusted_sshd, "up", "-g", "lab").exit_code == 0
    assert (
        _invoke("add", "down", "--host", "127.0.0.1", "--port", str(closed_port), "-g", "lab").exit_code == 0
    )
    result = _invoke("check", "--group", "lab", "--json")
    assert result.exit_code == 1
    reports = {r["device"]: r for r in json.loads(result.stdout)}
    assert reports["up"]["ok"] and reports["up"]["facts"]["arch"]
    assert not reports["down"]["ok"] and f"127.0.0.1:{closed_port}" in reports["down"]["error"]


def test_check_ssh_config_alias(trusted_sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    s = trusted_sshd
    ssh_client_env.ssh_config.write_text(
        f"Host bench\n  HostName {s.host}\n  Port {s.port}\n  User {s.user}\n  IdentityFile {s.client_key}\n"
    )
    result = _invoke("check", "bench", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["host"] == s.host


def test_check_needs_exactly_one_target(ssh_client_env: ClientEnv) -> None:
    assert _invoke("check").exit_code == 2
    assert _invoke("check", "local", "--group", "lab").exit_code == 2


def test_failed_check_exits_1_from_the_real_entry_point(ssh_client_env: ClientEnv) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    assert _invoke("add", "down", "--host", "127.0.0.1", "--port", str(closed_port)).exit_code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "edgesdk", "devices", "check", "down"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: down: cannot connect") and f"127.0.0.1:{closed_port}" in proc.stderr
