"""known_hosts lookups (plain and hashed entries), recording, and the user's hashed file."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from edgesdk.deploy.hostkeys import file_holding, remember
from edgesdk.deploy.ssh import SSHTransport
from edgesdk.errors import ChangedHostKey
from tests.sshd_fixture import ClientEnv, SshServer


def _hash(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    Path(str(path) + ".old").unlink()


def test_file_holding_plain_list_and_hashed(tmp_path: Path, sshd: SshServer) -> None:
    plain = tmp_path / "plain"
    kind_blob = " ".join(sshd.known_hosts_line().split()[1:])
    plain.write_text(f"# comment\nother,jetson01,10.0.0.9 {kind_blob}\n")
    hashed = tmp_path / "hashed"
    hashed.write_text(f"[10.0.0.7]:2222 {kind_blob}\n")
    _hash(hashed)
    assert "10.0.0.7" not in hashed.read_text()
    assert file_holding([tmp_path / "missing", plain, hashed], "jetson01") == plain
    assert file_holding([plain, hashed], "[10.0.0.7]:2222") == hashed
    assert file_holding([plain, hashed], "10.0.0.7") is None


def test_remember_creates_private_file(tmp_path: Path) -> None:
    class Key:
        def get_name(self) -> str:
            return "ssh-ed25519"

        def get_base64(self) -> str:
            return "AAAAC3NzaC1lZDI1NTE5AAAAIBlob"

    store = tmp_path / "new" / "known_hosts"
    remember(store, "[h]:1", Key())
    remember(store, "h2", Key())
    assert store.read_text().splitlines() == [
        "[h]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlob",
        "h2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlob",
    ]
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_hashed_user_known_hosts_is_honoured(sshd_private: SshServer, ssh_client_env: ClientEnv) -> None:
    s = sshd_private
    ssh_client_env.user_known_hosts.write_text(s.known_hosts_line())
    _hash(ssh_client_env.user_known_hosts)
    with SSHTransport(s.host, port=s.port, user=s.user, key=s.client_key, use_agent=False) as t:
        assert t.run(["true"]).ok
    s.rotate_host_key()
    with pytest.raises(ChangedHostKey) as info, SSHTransport(
        s.host, port=s.port, user=s.user, key=s.client_key, use_agent=False, label="jet"
    ) as t:
        t.run(["true"])
    # the stale key is in the user's own file: ssh-keygen's default file, so no -f
    assert f"`ssh-keygen -R '[127.0.0.1]:{s.port}'`, then `edgesdk devices check jet --accept-new`" in (
        info.value.hint or ""
    )
