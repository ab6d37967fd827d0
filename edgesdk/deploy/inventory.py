"""Devices by name: the inventory file, ``~/.ssh/config`` aliases, and the built-in ``local``.

The inventory is YAML in :func:`edgesdk.settings.config_file` (``EDGESDK_CONFIG``
overrides)::

    version: 1
    devices:
      jetson01:
        host: 192.168.1.20
        user: nvidia
        port: 22                 # optional; else ~/.ssh/config's Port, else 22
        key: ~/.ssh/id_ed25519   # optional; else ~/.ssh/config's IdentityFile, agent, defaults
        python: python3          # the interpreter on the device
        groups: [lab]

A name is resolved in this order: ``local`` (this machine, no SSH), an inventory entry
(missing user/port/key/ProxyJump are filled from ``~/.ssh/config`` for its host, as
``ssh`` would), then a ``Host`` alias in ``~/.ssh/config`` (HostName, User, Port,
IdentityFile, ProxyJump honoured).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from edgesdk import settings
from edgesdk.errors import InventoryError, UnknownDevice

LOCAL_NAME = "local"
DEFAULT_PYTHON = "python3"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9_.:%\[\]-]{1,253}")
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}")
_FIELDS = ("host", "user", "port", "key", "python", "groups", "proxy_jump")


@dataclass(frozen=True)
class Device:
    """A device edgesdk can deploy to.

    Attributes:
        name: inventory name (letters, digits, ``.``, ``_``, ``-``; at most 63 characters).
        host: host name or IP address (for ``local``: ``localhost``).
        user: login name; None: ``~/.ssh/config``'s User, else the local user name.
        port: SSH port; None: ``~/.ssh/config``'s Port, else 22.
        key: private key file; None: ``~/.ssh/config``'s IdentityFile, the agent, default keys.
        python: the Python interpreter on the device that runs the agent.
        groups: group names, for ``--group``.
        proxy_jump: OpenSSH ProxyJump value (jump hosts), or None.
        source: where the entry comes from: ``inventory``, ``ssh_config`` or ``builtin``.
    """

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    key: str | None = None
    python: str = DEFAULT_PYTHON
    groups: tuple[str, ...] = ()
    proxy_jump: str | None = None
    source: str = "inventory"

    @property
    def is_local(self) -> bool:
        """Whether this is the built-in ``local`` device (no SSH)."""
        return self.source == "builtin" and self.name == LOCAL_NAME

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (for ``devices list --json``)."""
        return {
            "name": self.name,
            "host": self.host,
            "user": self.user,
            "port": self.port,
            "key": self.key,
            "python": self.python,
            "groups": list(self.groups),
            "proxy_jump": self.proxy_jump,
            "source": self.source,
        }


LOCAL = Device(name=LOCAL_NAME, host="localhost", python=sys.executable, source="builtin")


def validate_name(name: str, what: str = "device") -> str:
    """Check a device or group name; returns it unchanged.

    Raises:
        InventoryError: empty, too long, or containing anything but letters, digits, ``.``,
            ``_``, ``-`` (so names never act as paths, options or shell syntax).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InventoryError(
            f"{what} name {name!r} is not allowed",
            hint="use letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 63)",
        )
    return name


def validate_device(device: Device) -> Device:
    """Check every field of an inventory entry; returns it unchanged.

    Raises:
        InventoryError: naming the device, the field and what is allowed.
    """
    validate_name(device.name)
    where = f"device {device.name!r}"
    if not _HOST.fullmatch(device.host) or device.host.startswith("-"):
        raise InventoryError(f"{where}: host {device.host!r} is not a host name or IP address")
    if device.user is not None and not _USER.fullmatch(device.user):
        raise InventoryError(f"{where}: user {device.user!r} is not a valid login name")
    if device.port is not None and (isinstance(device.port, bool) or not 1 <= device.port <= 65535):
        raise InventoryError(f"{where}: port {device.port!r} is not between 1 and 65535")
    for label, value in (("key", device.key), ("python", device.python), ("proxy_jump", device.proxy_jump)):
        if value is not None and (not value.strip() or any(c in value for c in "\x00\n\r")):
            raise InventoryError(f"{where}: {label} {value!r} is empty or contains control characters")
    for group in device.groups:
        validate_name(group, what=f"{where}: group")
    return device


def inventory_path(path: Path | None = None) -> Path:
    """The inventory file used when ``path`` is None (``EDGESDK_CONFIG`` or the config dir)."""
    return path if path is not None else settings.config_file()


def load_inventory(path: Path | None = None) -> dict[str, Device]:
    """The inventory's devices by name (empty when the file does not exist).

    Raises:
        InventoryError: the file is not valid YAML or an entry is invalid (file and key named).
    """
    path = inventory_path(path)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InventoryError(f"cannot read inventory {path}: {err}", hint="fix or remove the file") from err
    if not isinstance(data, dict) or not isinstance(data.get("devices", {}), dict):
        raise InventoryError(f"inventory {path} must be a mapping with a 'devices' mapping")
    devices: dict[str, Device] = {}
    for name, entry in (data.get("devices") or {}).items():
        devices[str(name)] = _device_from_entry(str(name), entry, path)
    return devices


def _device_from_entry(name: str, entry: Any, path: Path) -> Device:
    where = f"{path}: devices.{name}"
    if not isinstance(entry, dict):
        raise InventoryError(f"{where} must be a mapping with at least 'host'")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise InventoryError(f"{where}: unknown key(s) {unknown}; allowed: {list(_FIELDS)}")
    if not isinstance(entry.get("host"), str):
        raise InventoryError(f"{where}.host is missing or not a string")
    groups = entry.get("groups") or []
    port = entry.get("port")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise InventoryError(f"{where}.groups must be a list of names")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        raise InventoryError(f"{where}.port must be a number")
    for key in ("user", "key", "python", "proxy_jump"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise InventoryError(f"{where}.{key} must be a string")
    device = Device(
        name=name,
        host=entry["host"],
        user=entry.get("user"),
        port=port,
        key=entry.get("key"),
        python=entry.get("python") or DEFAULT_PYTHON,
        groups=tuple(groups),
        proxy_jump=entry.get("proxy_jump"),
    )
    try:
        return validate_device(device)
    except InventoryError as err:
        raise InventoryError(f"{path}: {err}", hint=err.hint) from err


def save_inventory(devices: dict[str, Device], path: Path | None = None) -> Path:
    """Write the inventory atomically (temporary file, then rename). Returns the path."""
    path = inventory_path(path)
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(devices):
        device = devices[name]
        entry: dict[str, Any] = {"host": device.host}
        for key in ("user", "port", "key", "proxy_jump"):
            if getattr(device, key) is not None:
                entry[key] = getattr(device, key)
        entry["python"] = device.python
        if device.groups:
            entry["groups"] = list(device.groups)
        entries[name] = entry
    text = "# edgesdk device inventory (`edgesdk devices add/remove` edit it)\n"
    text += yaml.safe_dump({"version": 1, "devices": entries}, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".devices-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def add_device(device: Device, *, path: Path | None = None, replace_existing: bool = False) -> Device:
    """Validate ``device`` and store it in the inventory.

    Raises:
        InventoryError: invalid fields, the reserved name ``local``, or the name exists
            (unless ``replace_existing``).
    """
    validate_device(device)
    if device.name == LOCAL_NAME:
        raise InventoryError("'local' is the built-in device (this machine); choose another name")
    devices = load_inventory(path)
    if device.name in devices and not replace_existing:
        raise InventoryError(
            f"device {device.name!r} already exists ({devices[device.name].host})",
            hint=f"add it again with --replace to overwrite it, or `edgesdk devices remove {device.name}`",
        )
    devices[device.name] = replace(device, source="inventory")
    save_inventory(devices, path)
    return devices[device.name]


def remove_device(name: str, *, path: Path | None = None) -> Device:
    """Remove ``name`` from the inventory and return the removed entry.

    Raises:
        UnknownDevice: no inventory entry has that name (``local`` cannot be removed).
    """
    devices = load_inventory(path)
    if name not in devices:
        raise UnknownDevice(
            f"no device named {name!r} in the inventory {inventory_path(path)}",
            hint="`edgesdk devices list` shows the names",
        )
    removed = devices.pop(name)
    save_inventory(devices, path)
    return removed


def list_devices(path: Path | None = None) -> list[Device]:
    """``local`` first, then the inventory's devices by name."""
    devices = load_inventory(path)
    return [LOCAL] + [devices[name] for name in sorted(devices)]


def resolve_device(name: str, *, path: Path | None = None, ssh_config: Path | None = None) -> Device:
    """The device called ``name``, with ``~/.ssh/config`` settings filled in.

    Raises:
        UnknownDevice: not ``local``, not in the inventory and not a ``Host`` alias.
        InventoryError: the name or the inventory is invalid.
    """
    if name == LOCAL_NAME:
        return LOCAL
    validate_name(name)
    devices = load_inventory(path)
    from edgesdk.deploy.ssh import ssh_config_lookup  # lazy: paramiko only when needed

    if name in devices:
        device = devices[name]
        found = ssh_config_lookup(device.host, ssh_config)
        if found is None:
            return device
        return replace(
            device,
            host=found.hostname or device.host,
            user=device.user or found.user,
            port=device.port or found.port,
            key=device.key or found.identity_file,
            proxy_jump=device.proxy_jump or found.proxy_jump,
        )
    found = ssh_config_lookup(name, ssh_config)
    if found is not None and found.explicit:
        return validate_device(
            Device(
                name=name,
                host=found.hostname or name,
                user=found.user,
                port=found.port,
                key=found.identity_file,
                proxy_jump=found.proxy_jump,
                source="ssh_config",
            )
        )
    raise UnknownDevice(
        f"no device named {name!r}: not in {inventory_path(path)}, not a Host in ~/.ssh/config, not 'local'",
        hint=f"add it: `edgesdk devices add {name} --host HOST [--user USER]`",
    )


def devices_in_group(group: str, *, path: Path | None = None) -> list[Device]:
    """Every inventory device in ``group``, by name, resolved like :func:`resolve_device`.

    Raises:
        UnknownDevice: no device is in that group.
    """
    validate_name(group, what="group")
    members = [d.name for d in load_inventory(path).values() if group in d.groups]
    if not members:
        raise UnknownDevice(
            f"no device is in group {group!r}",
            hint="add one with `edgesdk devices add NAME --host HOST --group GROUP`",
        )
    return [resolve_device(name, path=path) for name in sorted(members)]
