"""SSH transport over paramiko — the only module in edgesdk that imports paramiko (lazily).

Host keys are checked strictly (OpenSSH's ``StrictHostKeyChecking yes``): the user's
``~/.ssh/known_hosts`` and edgesdk's own ``known_hosts`` (beside the inventory file) are
read; an unknown key is refused (:class:`~edgesdk.errors.UnknownHostKey`) unless
``accept_new=True`` (OpenSSH's ``accept-new``), which records it in edgesdk's file; a
changed key is always refused (:class:`~edgesdk.errors.ChangedHostKey`). Authentication uses the given key, the ssh-agent and the default
keys in ``~/.ssh``; passwords and passphrases are never logged nor put into messages.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesdk import settings
from edgesdk._lazy import require
from edgesdk.deploy import _channel, hostkeys, ssh_errors
from edgesdk.deploy.transport import CommandStream, ProgressCallback, Result, quote_arg, quote_argv
from edgesdk.errors import (
    ArtifactNotFound,
    AuthFailed,
    ConnectionFailed,
    EdgeSdkError,
    InventoryError,
    RemoteError,
)

log = logging.getLogger(__name__)

# Throughput tuning (measured with tests/edgesdk/deploy/bench_put.py, see docs/deploy.md):
# - a 64 MiB channel window instead of paramiko's 2 MiB keeps more writes in flight;
# - AES-GCM first: one pass per packet instead of AES-CTR plus a separate HMAC;
# - SFTP write requests sized to fill whole SSH packets (paramiko's 32 KiB requests spill
#   ~40 bytes into a second packet, doubling the packet count), several packets per request
#   when the server is OpenSSH (its sftp-server accepts messages up to 256 KiB).
WINDOW_SIZE = 64 * 1024 * 1024
MAX_PACKET_SIZE = 32 * 1024
PREFERRED_CIPHERS: tuple[str, ...] = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
PACKETS_PER_WRITE = 7
_READ_SIZE = 1 << 20  # bytes read from the local file per step (progress granularity)
# paramiko's own log (tracebacks for failed handshakes) goes here, quiet unless EDGESDK_DEBUG.
_PARAMIKO_LOG = "edgesdk.deploy.paramiko"


def _paramiko() -> Any:
    return require("paramiko", feature="connecting to a device over SSH", hint="pip install 'paramiko>=3.4'")


@dataclass(frozen=True)
class SshHostConfig:
    """What ``~/.ssh/config`` says about one name (fields are None where it says nothing).

    Attributes:
        alias: the name looked up.
        explicit: True when a ``Host`` line names it without wildcards (so it is a device name).
    """

    alias: str
    explicit: bool
    hostname: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None


def ssh_config_lookup(alias: str, path: Path | None = None) -> SshHostConfig | None:
    """Look ``alias`` up in an OpenSSH client config (default ``~/.ssh/config``).

    Honours HostName, User, Port, IdentityFile (the first one that exists, else the first)
    and ProxyJump. ProxyCommand is not supported.

    Returns:
        None when the file does not exist.

    Raises:
        InventoryError: the file cannot be parsed.
    """
    path = path if path is not None else Path.home() / ".ssh" / "config"
    if not path.is_file():
        return None
    pm = _paramiko()
    try:
        config = pm.SSHConfig.from_path(str(path))
        found = config.lookup(alias)
    except Exception as err:  # paramiko raises several types for a bad file
        raise InventoryError(
            f"cannot read SSH config {path}: {err}", hint="fix the file (see `man ssh_config`)"
        ) from err
    patterns = {h for h in config.get_hostnames() if not set(h) & set("*?!")}
    files = [str(Path(f).expanduser()) for f in found.get("identityfile", [])]
    key = next((f for f in files if Path(f).is_file()), files[0] if files else None)
    port = found.get("port")
    try:
        port_value = int(port) if port is not None else None
    except ValueError:
        raise InventoryError(f"{path}: Port {port!r} for {alias} is not a number") from None
    host = found.get("hostname")
    return SshHostConfig(
        alias=alias,
        explicit=alias in patterns,
        hostname=host if host and host != alias else None,
        user=found.get("user"),
        port=port_value,
        identity_file=key,
        proxy_jump=found.get("proxyjump"),
    )


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """Split one ProxyJump hop ``[user@]host[:port]`` (or ``ssh://user@host:port``).

    Raises:
        InventoryError: the hop is empty or its port is not a number.
    """
    text = spec.strip().removeprefix("ssh://")
    user, _, hostport = text.rpartition("@")
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<h>[^:\s]+)(?::(?P<p>[^:]*))?", hostport)
    if not match:
        raise InventoryError(f"ProxyJump hop {spec!r} is not [user@]host[:port]")
    host = match.group("v6") or match.group("h")
    port = match.group("p6") or match.group("p")
    if port is not None and not port.isdigit():
        raise InventoryError(f"ProxyJump hop {spec!r}: port {port!r} is not a number")
    return user or None, host, int(port) if port else None


class _HostKeyPolicy:
    """paramiko's missing-host-key hook: refuse, or record the key when ``accept_new``."""

    def __init__(self, owner: SSHTransport) -> None:
        self._owner = owner

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        owner = self._owner
        if not owner.accept_new:
            raise hostkeys.unknown_key_error(
                hostname, key, host=owner.host, port=owner.port, label=owner.label
            )
        hostkeys.remember(owner.store, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.info(
            "recorded host key %s %s for %s in %s",
            key.get_name(),
            hostkeys.fingerprint(key),
            hostname,
            owner.store,
        )


class SSHTransport:
    """A :class:`~edgesdk.deploy.transport.Transport` to one host over SSH; connects on first use.

    Args:
        host: host name or address.
        port: SSH port.
        user: login name (default: the local user name, like OpenSSH).
        key: private key file; None tries the ssh-agent and the default keys in ``~/.ssh``.
        proxy_jump: OpenSSH ProxyJump value (``[user@]host[:port]``, comma-separated hops;
            a hop may be a ``~/.ssh/config`` alias).
        accept_new: record an unknown host key instead of refusing it (a changed key is
            still refused).
        label: the device name, used in messages and suggested commands.
        password: login password (never logged, never in messages).
        passphrase: passphrase of an encrypted ``key`` (never logged, never in messages).
        use_agent: try keys from the ssh-agent (``SSH_AUTH_SOCK``).
        connect_timeout: seconds for the TCP connect, the banner and authentication.
        known_hosts: files to read host keys from (default: user's and edgesdk's).
        store: file ``accept_new`` appends to (default: :func:`edgesdk_known_hosts`).
    """

    def __init__(
        self,
        host: str,
        *,
        port: int = 22,
        user: str | None = None,
        key: str | os.PathLike[str] | None = None,
        proxy_jump: str | None = None,
        accept_new: bool = False,
        label: str | None = None,
        password: str | None = None,
        passphrase: str | None = None,
        use_agent: bool = True,
        connect_timeout: float = 10.0,
        known_hosts: Sequence[Path] | None = None,
        store: Path | None = None,
        _via: SSHTransport | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user or getpass.getuser()
        self.key = Path(key).expanduser() if key is not None else None
        self.proxy_jump = proxy_jump if proxy_jump and proxy_jump.lower() != "none" else None
        self.accept_new = accept_new
        self.label = label
        self.use_agent = use_agent
        self.connect_timeout = connect_timeout
        self.store = store if store is not None else hostkeys.edgesdk_known_hosts()
        self.known_hosts = (
            list(known_hosts) if known_hosts is not None else [hostkeys.user_known_hosts(), self.store]
        )
        self._password = password
        self._passphrase = passphrase
        self._via = _via
        self._hops: list[SSHTransport] = []
        self._ssh: Any = None
        self._sftp_client: Any = None

    @property
    def name(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"SSHTransport({self.name!r}, label={self.label!r})"

    @property
    def has_password(self) -> bool:
        return bool(self._password)

    @property
    def has_passphrase(self) -> bool:
        return bool(self._passphrase)

    def redact(self, text: str) -> str:
        """``text`` with the password and passphrase (if any) replaced by ``***``."""
        for secret in (self._password, self._passphrase):
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- connecting ---------------------------------------------------------------------

    def _client(self) -> Any:
        if self._ssh is not None:
            transport = self._ssh.get_transport()
            if transport is not None and transport.is_active():
                return self._ssh
            self.close()
        self._ssh = self._connect()
        return self._ssh

    def _connect(self) -> Any:
        pm = _paramiko()
        if self.key is not None and not self.key.is_file():
            raise AuthFailed(
                f"SSH key {self.key} for {self.who()} does not exist",
                hint="fix the device's --key (edgesdk devices add NAME --host H --key PATH)",
            )
        client = pm.SSHClient()
        for path in self.known_hosts:
            _load_known_hosts(client.get_host_keys(), path)
        client.set_missing_host_key_policy(_HostKeyPolicy(self))
        try:
            sock = self._open_sock()
            client.connect(
                hostname=self.host,
                port=self.port,
                username=self.user,
                key_filename=[str(self.key)] if self.key is not None else None,
                look_for_keys=self.key is None,
                allow_agent=self.use_agent,
                password=self._password,
                passphrase=self._passphrase,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                sock=sock,
                transport_factory=_transport_factory,
            )
        except Exception as err:
            handshake_done = _handshake_done(client)
            client.close()
            self._close_hops()
            raise ssh_errors.translate(err, _paramiko(), self, handshake_done) from err
        _no_delay(client)
        return client

    def _open_sock(self) -> Any:
        if self._via is not None:
            return self._via.open_tunnel(self.host, self.port)
        if self.proxy_jump is None:
            return None
        previous: SSHTransport | None = None
        for hop in self.proxy_jump.split(","):
            user, host, port = parse_jump(hop)
            config = ssh_config_lookup(host)
            previous = SSHTransport(
                (config.hostname if config else None) or host,
                port=port or (config.port if config else None) or 22,
                user=user or (config.user if config else None),
                key=config.identity_file if config else None,
                accept_new=self.accept_new,
                label=self.label,
                use_agent=self.use_agent,
                connect_timeout=self.connect_timeout,
                known_hosts=self.known_hosts,
                store=self.store,
                _via=previous,
            )
            self._hops.append(previous)
        assert previous is not None
        return previous.open_tunnel(self.host, self.port)

    def open_tunnel(self, host: str, port: int) -> Any:
        """A ``direct-tcpip`` channel from this host to ``host:port`` (for ProxyJump)."""
        transport = self._client().get_transport()
        try:
            return transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0))
        except Exception as err:
            reason = self.redact(str(err)) or type(err).__name__
            raise ConnectionFailed(
                f"jump host {self.name} cannot reach {host}:{port}: {reason}",
                hint="check the device address as seen from the jump host, and AllowTcpForwarding there",
            ) from err

    def target(self) -> str:
        return quote_arg(f"{self.user}@{self.host}")

    def who(self) -> str:
        return f"{self.label} ({self.name})" if self.label and self.label != self.host else self.name

    # -- commands -----------------------------------------------------------------------

    def _open_channel(self, argv: Sequence[str]) -> Any:
        command = quote_argv(argv)
        client = self._client()
        with self._io(f"starting `{command[:80]}`"):
            channel = client.get_transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(command)
        return channel

    def run(self, argv: Sequence[str], *, timeout: float | None = None, stdin: bytes | None = None) -> Result:
        deadline = _channel.deadline_after(timeout)
        channel = self._open_channel(argv)
        out, err = bytearray(), bytearray()
        try:
            with self._io(f"running `{quote_argv(argv)[:80]}`"):
                for fd, data in _channel.pump(channel, stdin, deadline, argv, self.name):
                    (out if fd == 1 else err).extend(data)
                status = _channel.exit_status(channel, deadline, argv, self.name)
        finally:
            channel.close()
        return Result(status, bytes(out), bytes(err))

    def run_stream(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandStream:
        deadline = _channel.deadline_after(timeout)
        channel = self._open_channel(argv)
        what = f"running `{quote_argv(argv)[:80]}`"

        def chunks() -> Iterator[tuple[int, bytes]]:
            with self._io(what):
                yield from _channel.pump(channel, None, deadline, argv, self.name)

        def wait() -> int:
            with self._io(what):
                return _channel.exit_status(channel, deadline, argv, self.name)

        return CommandStream(chunks(), wait, channel.close)

    # -- files --------------------------------------------------------------------------

    def _sftp(self) -> Any:
        client = self._client()
        if self._sftp_client is None or self._sftp_client.get_channel().closed:
            pm = _paramiko()
            with self._io("opening SFTP"):
                self._sftp_client = pm.SFTPClient.from_transport(
                    client.get_transport(), window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE
                )
        return self._sftp_client

    def put(
        self, local: str | os.PathLike[str], remote: str, *, progress: ProgressCallback | None = None
    ) -> None:
        source = Path(local)
        if not source.is_file():
            raise ArtifactNotFound(f"cannot send {source}: no such file")
        sftp = self._sftp()
        total = source.stat().st_size
        done = 0
        with self._io(f"sending {source.name} to {self.name}:{remote}"), source.open("rb") as fh:
            with sftp.open(remote, "wb") as remote_file:
                remote_file.set_pipelined(True)
                remote_file.MAX_REQUEST_SIZE = self._write_size(sftp, remote_file)
                while chunk := fh.read(_READ_SIZE):
                    remote_file.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            written = sftp.stat(remote).st_size
        if written != done:
            raise RemoteError(
                f"sending {source.name} to {self.name}:{remote}: {written} of {done} bytes arrived"
            )
        if progress is not None and total == 0:
            progress(0, 0)

    def _write_size(self, sftp: Any, remote_file: Any) -> int:
        """Bytes per SFTP write request: whole SSH packets (paramiko sends max_packet - 64 each)."""
        payload = int(getattr(sftp.sock, "out_max_packet_size", MAX_PACKET_SIZE)) - 64
        overhead = (
            4 + 1 + 4 + 4 + len(remote_file.handle) + 8 + 4
        )  # length, type, id, handle, offset, data length
        banner = str(getattr(self._ssh.get_transport(), "remote_version", ""))
        packets = PACKETS_PER_WRITE if "OpenSSH" in banner else 1
        return max(4096, packets * payload - overhead)

    def get(self, remote: str, local: str | os.PathLike[str]) -> None:
        target = Path(local)
        partial = target.with_name(target.name + ".part")
        sftp = self._sftp()
        try:
            with self._io(f"fetching {self.name}:{remote}"), partial.open("wb") as fh:
                sftp.getfo(remote, fh)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """Turn paramiko/socket failures during an operation into RemoteError/ConnectionFailed."""
        pm = _paramiko()
        try:
            yield
        except EdgeSdkError:
            raise
        except (OSError, EOFError, pm.SSHException) as err:
            transport = self._ssh.get_transport() if self._ssh is not None else None
            reason = self.redact(str(err)) or type(err).__name__
            if transport is None or not transport.is_active() or isinstance(err, (EOFError, pm.SSHException)):
                self.close()  # the next use reconnects instead of reusing a dead connection
                raise ConnectionFailed(
                    f"{what}: lost the connection to {self.who()} ({reason})",
                    hint="check the device and the network, then run the command again",
                ) from err
            raise RemoteError(f"{what} failed on {self.who()}: {reason}") from err

    def close(self) -> None:
        for thing in (self._sftp_client, self._ssh):
            if thing is not None:
                try:
                    thing.close()
                except Exception as err:  # closing over a dead connection: nothing left to release
                    log.debug("closing %s: %r", self.name, err)
        self._sftp_client = None
        self._ssh = None
        self._close_hops()

    def _close_hops(self) -> None:
        for hop in reversed(self._hops):
            hop.close()
        self._hops.clear()

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _transport_factory(sock: Any, **kwargs: Any) -> Any:
    pm = _paramiko()
    transport = pm.Transport(
        sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE, **kwargs
    )
    options = transport.get_security_options()
    preferred = [c for c in PREFERRED_CIPHERS if c in options.ciphers]
    options.ciphers = tuple(preferred + [c for c in options.ciphers if c not in preferred])
    transport.set_log_channel(_PARAMIKO_LOG)
    logging.getLogger(_PARAMIKO_LOG).setLevel(logging.DEBUG if settings.debug() else logging.CRITICAL)
    return transport


def _handshake_done(client: Any) -> bool:
    transport = client.get_transport()
    return transport is not None and getattr(transport, "host_key", None) is not None


def _load_known_hosts(keys: Any, path: Path) -> None:
    if not path.is_file():
        return
    try:
        keys.load(str(path))
    except Exception as err:  # paramiko raises InvalidHostKey, SSHException, UnicodeError…
        raise RemoteError(
            f"cannot read known_hosts file {path}: {err}", hint="fix or remove the bad line in that file"
        ) from err


def _no_delay(client: Any) -> None:
    """Turn Nagle's algorithm off on the TCP socket (not on a ProxyJump channel).

    Each SFTP file close waits for the server's replies; with Nagle on, small requests sit
    behind the peer's delayed ACK, costing ~10 ms a file (measured: 64 COCO images went from
    12 ms to 2.5 ms each on loopback). OpenSSH sets TCP_NODELAY for the same reason.
    """
    sock = getattr(client.get_transport(), "sock", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
