"""open_transport / verify_connection: devices to transports."""

from __future__ import annotations

from edgesdk.deploy.connect import open_transport, verify_connection
from edgesdk.deploy.inventory import LOCAL
from edgesdk.deploy.local import LocalTransport
from edgesdk.deploy.ssh import SSHTransport
from tests.sshd_fixture import ClientEnv, SshServer


def test_local_needs_no_ssh() -> None:
    with open_transport(LOCAL) as t:
        assert isinstance(t, LocalTransport) and t.run(["true"]).ok


def test_device_fields_reach_the_ssh_transport(sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    device = sshd.device("jet", proxy_jump="gw")
    t = open_transport(device, accept_new=True)
    assert isinstance(t, SSHTransport)
    assert (t.host, t.port, t.user, t.key, t.proxy_jump, t.label, t.accept_new) == (
        sshd.host, sshd.port, sshd.user, sshd.client_key, "gw", "jet", True
    )  # fmt: skip


def test_verify_connection_records_the_key(sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    verify_connection(sshd.device(), accept_new=True)
    assert ssh_client_env.known_hosts.read_text() == sshd.known_hosts_line()
    verify_connection(sshd.device())  # strict now succeeds
