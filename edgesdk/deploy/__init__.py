"""Deploy to devices: inventory, transports (local and SSH), device facts.

paramiko is imported only by :mod:`edgesdk.deploy.ssh`, and only when a connection opens.
"""

from edgesdk.deploy.check import CheckReport, check_device, check_devices
from edgesdk.deploy.connect import open_transport, verify_connection
from edgesdk.deploy.facts import Facts, gather_facts
from edgesdk.deploy.inventory import LOCAL, Device, devices_in_group, list_devices, resolve_device
from edgesdk.deploy.local import LocalTransport
from edgesdk.deploy.ssh import SSHTransport
from edgesdk.deploy.transport import CommandStream, Result, Transport, quote_argv, remote_home

__all__ = [
    "LOCAL",
    "CheckReport",
    "CommandStream",
    "Device",
    "Facts",
    "LocalTransport",
    "Result",
    "SSHTransport",
    "Transport",
    "check_device",
    "check_devices",
    "devices_in_group",
    "gather_facts",
    "list_devices",
    "open_transport",
    "quote_argv",
    "remote_home",
    "resolve_device",
    "verify_connection",
]
