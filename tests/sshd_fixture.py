"""A REAL OpenSSH server on 127.0.0.1 for tests: throwaway host and user keys, a free port.

Import the fixtures into a ``conftest.py`` (``from tests.sshd_fixture import sshd, ...``):

* ``sshd`` (session): one server shared by many tests; do not restart it.
* ``sshd_private`` (function): a server of your own, which you may stop, restart or
  give a new host key.
* ``ssh_client_env`` (function): an isolated client side — ``HOME`` (so ``~/.ssh`` is
  empty), ``EDGESDK_CONFIG`` (so the inventory and edgesdk's known_hosts are fresh) and no
  ssh-agent.
* ``trusted_sshd``: ``sshd`` with its host key already in edgesdk's known_hosts.

The server runs ``sshd -D -e -f <cfg>`` as the current user (root in CI: root login is
allowed with keys only). ``SetEnv HOME`` and ``internal-sftp -d`` make a temporary
folder the "device home": commands see it as ``$HOME`` and SFTP's relative paths land in
it (commands still start in the user's real home directory, as sshd always does).
Tests skip with a reason when ``sshd`` is not installed (``apt-get install openssh-server``).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edgesdk.deploy.inventory import Device

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
START_TIMEOUT = 10.0


def find_sshd() -> str | None:
    """Absolute path of sshd (it refuses to run from a relative path), or None."""
    found = shutil.which("sshd")
    for candidate in ([found] if found else []) + list(SSHD_CANDIDATES):
        if candidate and os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgesdk-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SshServer:
    """One sshd process and its files under ``root``."""

    root: Path
    sshd: str
    host: str = "127.0.0.1"
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        """The private key authorised to log in."""
        return self.root / "client" / "id_ed25519"

    @property
    def home(self) -> Path:
        """The "device home": ``$HOME`` for commands and SFTP's start folder."""
        return self.root / "home"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def setup(self) -> None:
        (self.root / "client").mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        _keygen(self.host_key)
        _keygen(self.client_key)
        shutil.copy(self.client_key.with_suffix(".pub"), self.root / "authorized_keys")

    def _config(self) -> Path:
        cfg = self.root / "sshd_config"
        cfg.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "AllowTcpForwarding yes",
                    "MaxStartups 64",
                    "MaxSessions 64",
                    "LogLevel VERBOSE",
                    f"SetEnv HOME={self.home}",
                    f"Subsystem sftp internal-sftp -d {self.home}",
                    "",
                ]
            )
        )
        return cfg

    def start(self) -> None:
        """Start sshd (on a new free port unless one is set) and wait until it greets."""
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation dir
        for _attempt in range(3):
            self.port = self.port or _free_port()
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen([self.sshd, "-D", "-e", "-f", str(self._config())], stderr=log)
            if self._wait_ready():
                return
            self.stop()
            self.port = 0  # the port was taken meanwhile: try another
        raise RuntimeError(f"sshd did not start; its log:\n{self.log.read_text()[-2000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def rotate_host_key(self) -> None:
        """Give the server a brand-new host key (as a re-flashed device would have) and restart."""
        self.stop()
        self.host_key.unlink()
        self.host_key.with_suffix(".pub").unlink()
        _keygen(self.host_key)
        self.start()

    def known_hosts_line(self) -> str:
        """This server's host key as an OpenSSH known_hosts line."""
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.host}]:{self.port} {kind} {blob}\n"

    def device(self, name: str = "testdev", **overrides: object) -> Device:
        """An inventory entry pointing at this server with the authorised key."""
        fields: dict[str, object] = dict(
            name=name, host=self.host, user=self.user, port=self.port, key=str(self.client_key)
        )
        fields.update(overrides)
        return Device(**fields)  # type: ignore[arg-type]


def start_server(root: Path) -> SshServer:
    """Create keys under ``root`` and start a server (skips the test if sshd is missing)."""
    sshd = find_sshd()
    if sshd is None:
        pytest.skip("OpenSSH sshd not installed (apt-get install -y openssh-server)")
    server = SshServer(root=root, sshd=sshd)
    server.setup()
    server.start()
    return server


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A shared sshd for the whole session (do not stop it or change its key)."""
    server = start_server(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture()
def sshd_private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd for one test only: stop, restart or rotate its host key freely."""
    server = start_server(tmp_path_factory.mktemp("sshd_private"))
    yield server
    server.stop()


@dataclass
class ClientEnv:
    """The isolated client side of a test."""

    home: Path
    inventory: Path

    @property
    def known_hosts(self) -> Path:
        """edgesdk's own known_hosts (where ``accept_new`` writes)."""
        return self.inventory.parent / "known_hosts"

    @property
    def user_known_hosts(self) -> Path:
        return self.home / ".ssh" / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.home / ".ssh" / "config"


@pytest.fixture()
def ssh_client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClientEnv:
    """A fresh HOME, inventory and known_hosts; no ssh-agent."""
    home = tmp_path / "client_home"
    (home / ".ssh").mkdir(parents=True)
    inventory = tmp_path / "config" / "devices.yaml"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("EDGESDK_CONFIG", str(inventory))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return ClientEnv(home=home, inventory=inventory)


@pytest.fixture()
def trusted_sshd(sshd: SshServer, ssh_client_env: ClientEnv) -> SshServer:
    """The shared sshd, with its host key already trusted by edgesdk."""
    ssh_client_env.known_hosts.parent.mkdir(parents=True, exist_ok=True)
    ssh_client_env.known_hosts.write_text(sshd.known_hosts_line())
    return sshd
