"""Turn paramiko and socket failures while connecting into edgesdk's typed errors.

Works on the paramiko module object it is given, so it does not import paramiko itself
(``ssh.py`` stays the only module that does). Messages are built from the host, port, user
and key path; exception texts pass through :meth:`SSHTransport.redact` first.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any

from edgesdk.deploy import hostkeys
from edgesdk.deploy.transport import quote_arg
from edgesdk.errors import AuthFailed, ConnectionFailed, EdgeSdkError

if TYPE_CHECKING:
    from edgesdk.deploy.ssh import SSHTransport


def translate(err: Exception, pm: Any, t: SSHTransport, handshake_done: bool) -> Exception:
    """The edgesdk error for a failed connect (``pm``: the paramiko module)."""
    if isinstance(err, EdgeSdkError):
        return err
    if isinstance(err, pm.BadHostKeyException):
        return hostkeys.changed_key_error(
            err.key,
            err.expected_key,
            host=t.host,
            port=t.port,
            label=t.label,
            files=t.known_hosts,
        )
    if isinstance(err, pm.AuthenticationException):
        return _auth_error(err, pm, t)
    if isinstance(err, pm.SSHException) and handshake_done:  # e.g. a key paramiko cannot decrypt
        return _auth_error(err, pm, t)
    if not isinstance(err, (OSError, EOFError, pm.SSHException)):
        return err
    return ConnectionFailed(
        f"cannot connect to {t.who()}: {_reason(err, pm, t)}",
        hint=f"check that the device is on and reachable: `ssh -p {t.port} {t.target()}`",
    )


def _reason(err: Exception, pm: Any, t: SSHTransport) -> str:
    if isinstance(err, socket.gaierror):
        return f"cannot resolve host name {t.host!r}"
    codes = {getattr(e, "errno", None) for e in getattr(err, "errors", {}).values()} | {
        getattr(err, "errno", None)
    }
    if isinstance(err, ConnectionRefusedError) or errno.ECONNREFUSED in codes:
        return "connection refused (is sshd running there, and is the port right?)"
    if errno.EHOSTUNREACH in codes or errno.ENETUNREACH in codes:
        return "no route to host"
    if isinstance(err, TimeoutError):
        return f"no answer within {t.connect_timeout:g} s"
    if isinstance(err, pm.SSHException):
        return f"no SSH server answered properly ({t.redact(str(err))})"
    return t.redact(str(err)) or type(err).__name__


def _auth_error(err: Exception, pm: Any, t: SSHTransport) -> AuthFailed:
    if isinstance(err, pm.PasswordRequiredException):
        return AuthFailed(
            f"key {t.key} for {t.who()} is encrypted and no passphrase was given",
            hint=f"load it into the ssh-agent: `ssh-add {quote_arg(str(t.key))}`",
        )
    detail = t.redact(str(err)).strip()
    if t.key is not None and not isinstance(err, pm.AuthenticationException):
        return AuthFailed(
            f"cannot use key {t.key} for {t.who()}: {detail or type(err).__name__}"
            + (" (wrong passphrase?)" if t.has_passphrase else ""),
            hint="check the key file and its passphrase (`ssh-keygen -y -f KEY` tests both)",
        )
    tried = [f"key {t.key}" if t.key else "the default keys in ~/.ssh"]
    tried += ["the ssh-agent"] if t.use_agent else []
    tried += ["a password"] if t.has_password else []
    pub = f"{t.key}.pub" if t.key else "~/.ssh/id_ed25519.pub"
    return AuthFailed(
        f"{t.who()} refused our credentials (tried {', '.join(tried)})" + (f": {detail}" if detail else ""),
        hint=f"check the user name, or install your public key on the device: "
        f"`ssh-copy-id -i {pub} -p {t.port} {t.target()}`",
    )
