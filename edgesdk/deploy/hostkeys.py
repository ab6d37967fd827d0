"""known_hosts files and host-key errors (OpenSSH formats; no paramiko import here).

edgesdk reads the user's ``~/.ssh/known_hosts`` (never writes it) and its own
``known_hosts`` beside the inventory file, where ``accept_new`` records keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesdk import settings
from edgesdk.deploy.transport import quote_arg
from edgesdk.errors import ChangedHostKey, UnknownHostKey

_STORE_LOCK = threading.Lock()


def user_known_hosts() -> Path:
    """The user's OpenSSH known_hosts file (read, never written by edgesdk)."""
    return Path.home() / ".ssh" / "known_hosts"


def edgesdk_known_hosts() -> Path:
    """edgesdk's own known_hosts, beside the inventory; ``accept_new`` writes here."""
    return settings.config_file().parent / "known_hosts"


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: Any) -> str:
    """OpenSSH's ``SHA256:…`` fingerprint of a public key (anything with ``asbytes()``)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _matches(pattern_field: str, name: str) -> bool:
    """Whether a known_hosts host field (plain list or ``|1|salt|hash``) names ``name``."""
    if pattern_field.startswith("|1|"):
        try:
            salt, digest = (base64.b64decode(part) for part in pattern_field[3:].split("|", 1))
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
    return name in pattern_field.split(",")


def file_holding(files: Sequence[Path], name: str) -> Path | None:
    """The first of ``files`` with a (plain or hashed) entry for ``name``, or None."""
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 3 and not line.startswith("#") and _matches(fields[0], name):
                return path
    return None


def remember(store: Path, name: str, key: Any) -> None:
    """Append ``name keytype base64`` to ``store`` (created 0600 in a 0700 folder)."""
    store.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    with _STORE_LOCK, store.open("a", encoding="ascii") as fh:
        fh.write(line)
    store.chmod(0o600)


def unknown_key_error(name: str, key: Any, *, host: str, port: int, label: str | None) -> UnknownHostKey:
    """The refusal of a key no known_hosts file has, with the exact commands to accept it."""
    accept = f"`edgesdk devices check {quote_arg(label)} --accept-new`" if label else "accept_new=True"
    scan = f"`ssh-keyscan -p {port} {quote_arg(host)} >> ~/.ssh/known_hosts`"
    return UnknownHostKey(
        f"unknown host key for {name} ({key.get_name()} {fingerprint(key)}); "
        "edgesdk does not trust a device it has never seen",
        hint=f"if this is your device, run {accept}, or {scan}",
    )


def changed_key_error(
    key: Any, expected: Any, *, host: str, port: int, label: str | None, files: Sequence[Path]
) -> ChangedHostKey:
    """The refusal of a key that differs from the recorded one, with how to drop the old one."""
    name = known_hosts_name(host, port)
    holder = file_holding(files, name)
    remove = f"ssh-keygen -R {quote_arg(name)}"
    if holder is not None and holder != user_known_hosts():
        remove += f" -f {quote_arg(str(holder))}"
    again = (
        f"edgesdk devices check {quote_arg(label)} --accept-new" if label else "connect with accept_new=True"
    )
    return ChangedHostKey(
        f"the host key of {name} CHANGED: it is now {key.get_name()} {fingerprint(key)}, "
        f"but {holder or 'known_hosts'} records {expected.get_name()} {fingerprint(expected)}; "
        "refusing to connect (the device was re-flashed, or someone is intercepting the connection)",
        hint=f"only if you know the device was re-installed: `{remove}`, then `{again}`",
    )
