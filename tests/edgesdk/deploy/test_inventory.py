"""The inventory file, name validation, ~/.ssh/config aliases and the built-in `local`."""

from __future__ import annotations

import sys

import pytest
import yaml

from edgesdk.deploy.inventory import (
    LOCAL,
    Device,
    add_device,
    devices_in_group,
    list_devices,
    load_inventory,
    remove_device,
    resolve_device,
    validate_name,
)
from edgesdk.errors import InventoryError, UnknownDevice
from tests.sshd_fixture import ClientEnv


def test_add_list_remove_round_trip(ssh_client_env: ClientEnv) -> None:
    add_device(Device("jetson01", "192.168.1.20", user="nvidia", groups=("lab", "orin")))
    add_device(
        Device("jetson02", "jetson02.local", port=2222, key="~/.ssh/id_jet", python="/usr/bin/python3.8")
    )
    data = yaml.safe_load(ssh_client_env.inventory.read_text())
    assert data["devices"]["jetson01"] == {
        "host": "192.168.1.20",
        "user": "nvidia",
        "python": "python3",
        "groups": ["lab", "orin"],
    }
    assert data["devices"]["jetson02"]["port"] == 2222
    assert [d.name for d in list_devices()] == ["local", "jetson01", "jetson02"]
    assert load_inventory()["jetson01"].groups == ("lab", "orin")
    assert remove_device("jetson01").host == "192.168.1.20"
    assert list(load_inventory()) == ["jetson02"]
    with pytest.raises(UnknownDevice, match="jetson01"):
        remove_device("jetson01")


def test_duplicates_and_reserved_name(ssh_client_env: ClientEnv) -> None:
    add_device(Device("a", "10.0.0.1"))
    with pytest.raises(InventoryError, match="already exists"):
        add_device(Device("a", "10.0.0.2"))
    assert add_device(Device("a", "10.0.0.2"), replace_existing=True).host == "10.0.0.2"
    with pytest.raises(InventoryError, match="built-in"):
        add_device(Device("local", "10.0.0.3"))


@pytest.mark.parametrize(
    "name", ["", "../etc", "a/b", "-rf", "a b", "x;y", "$(id)", "a..b", "é", "n" * 64, ".hidden"]
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InventoryError):
        validate_name(name)


@pytest.mark.parametrize(
    "device",
    [
        Device("d", "-oProxyCommand=x"),
        Device("d", "host name"),
        Device("d", "h", user="a b"),
        Device("d", "h", port=0),
        Device("d", "h", port=70000),
        Device("d", "h", python="python3\nrm"),
        Device("d", "h", groups=("ok", "not ok")),
    ],
)
def test_bad_fields_are_refused(device: Device, ssh_client_env: ClientEnv) -> None:
    with pytest.raises(InventoryError):
        add_device(device)
    assert not ssh_client_env.inventory.exists()


def test_invalid_file_names_file_and_key(ssh_client_env: ClientEnv) -> None:
    path = ssh_client_env.inventory
    path.parent.mkdir(parents=True)
    path.write_text("devices:\n  jet:\n    host: h\n    hostname: typo\n")
    with pytest.raises(InventoryError, match=r"devices\.jet: unknown key\(s\) \['hostname'\]"):
        load_inventory()
    path.write_text("devices: [unclosed\n")
    with pytest.raises(InventoryError, match=str(path)):
        load_inventory()
    path.write_text("devices:\n  jet:\n    host: h\n    port: twenty\n")
    with pytest.raises(InventoryError, match="port"):
        load_inventory()


def test_local_is_built_in(ssh_client_env: ClientEnv) -> None:
    assert resolve_device("local") is LOCAL and LOCAL.is_local and LOCAL.python == sys.executable


def test_ssh_config_alias_and_merge(ssh_client_env: ClientEnv) -> None:
    ssh_client_env.ssh_config.write_text(
        "Host orin\n  HostName 10.1.2.3\n  User nvidia\n  Port 2200\n  IdentityFile ~/.ssh/id_orin\n  ProxyJump gw\n"
        "Host *.lab\n  User labuser\n  Port 22\n"
    )
    alias = resolve_device("orin")
    assert (alias.host, alias.user, alias.port, alias.proxy_jump, alias.source) == (
        "10.1.2.3",
        "nvidia",
        2200,
        "gw",
        "ssh_config",
    )
    assert alias.key == str(ssh_client_env.home / ".ssh" / "id_orin")
    add_device(Device("bench1", "bench1.lab", key="/keys/k"))
    merged = resolve_device("bench1")
    assert (merged.host, merged.user, merged.port, merged.key) == ("bench1.lab", "labuser", 22, "/keys/k")
    with pytest.raises(UnknownDevice) as info:
        resolve_device("x.lab")  # wildcard-only: not a device name
    assert "edgesdk devices add x.lab --host HOST" in (info.value.hint or "")
    with pytest.raises(UnknownDevice):
        resolve_device("nowhere")


def test_groups(ssh_client_env: ClientEnv) -> None:
    add_device(Device("b", "10.0.0.2", groups=("lab",)))
    add_device(Device("a", "10.0.0.1", groups=("lab", "x")))
    add_device(Device("c", "10.0.0.3"))
    assert [d.name for d in devices_in_group("lab")] == ["a", "b"]
    with pytest.raises(UnknownDevice, match="no device is in group 'none'"):
        devices_in_group("none")
