"""From a :class:`~edgesdk.deploy.inventory.Device` to an open :class:`Transport`."""

from __future__ import annotations

from edgesdk.deploy.inventory import Device
from edgesdk.deploy.local import LocalTransport
from edgesdk.deploy.transport import Transport


def open_transport(device: Device, *, accept_new: bool = False, connect_timeout: float = 10.0) -> Transport:
    """The transport for ``device``: :class:`LocalTransport` for ``local``, SSH otherwise.

    Nothing connects yet: the SSH transport connects on first use.

    Args:
        device: a resolved device (see :func:`~edgesdk.deploy.inventory.resolve_device`).
        accept_new: record the device's host key if it is unknown (a changed key is
            still refused).
        connect_timeout: seconds for the TCP connect, the SSH banner and authentication.
    """
    if device.is_local:
        return LocalTransport()
    from edgesdk.deploy.ssh import SSHTransport

    return SSHTransport(
        device.host,
        port=device.port or 22,
        user=device.user,
        key=device.key,
        proxy_jump=device.proxy_jump,
        accept_new=accept_new,
        label=device.name,
        connect_timeout=connect_timeout,
    )


def verify_connection(device: Device, *, accept_new: bool = False) -> None:
    """Connect to ``device`` and run ``true`` (records its host key when ``accept_new``).

    Raises:
        RemoteError: ConnectionFailed, AuthFailed, UnknownHostKey, ChangedHostKey, ….
    """
    with open_transport(device, accept_new=accept_new) as transport:
        argv = ["true"]
        transport.run(argv, timeout=30).check(argv, transport.name)
