"""`edgesdk devices add|list|remove|check`: the device inventory and each device's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgesdk.cli._console import err_console, next_step, out_console, print_json
from edgesdk.cli._params import AcceptNewOpt, GroupOpt, JsonOpt
from edgesdk.deploy.check import CheckReport, check_devices, fact_rows
from edgesdk.deploy.connect import verify_connection
from edgesdk.deploy.inventory import (
    DEFAULT_PYTHON,
    Device,
    add_device,
    devices_in_group,
    inventory_path,
    list_devices,
    remove_device,
    resolve_device,
)

app = typer.Typer(
    help="Devices to deploy to: the inventory, ~/.ssh/config Host aliases, and the built-in `local`.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="device name: letters, digits, '.', '_', '-'")]
HostOpt = Annotated[str, typer.Option("--host", help="host name or IP address of the device")]
UserOpt = Annotated[
    Optional[str], typer.Option("--user", help="login name [default: ~/.ssh/config, else yours]")
]
PortOpt = Annotated[
    Optional[int], typer.Option("--port", min=1, max=65535, help="SSH port [default: ~/.ssh/config, else 22]")
]
KeyOpt = Annotated[
    Optional[Path],
    typer.Option("--key", help="private key file [default: ~/.ssh/config, ssh-agent, ~/.ssh/id_*]"),
]
PythonOpt = Annotated[str, typer.Option("--python", help="the Python interpreter on the device")]
GroupsOpt = Annotated[
    Optional[list[str]], typer.Option("--group", "-g", help="add the device to this group (repeatable)")
]


def _where(device: Device) -> str:
    if device.is_local:
        return "this machine"
    user = f"{device.user}@" if device.user else ""
    return f"{user}{device.host}:{device.port or 22}"


@app.command("add")
def add_cmd(
    name: NameArg,
    host: HostOpt,
    user: UserOpt = None,
    port: PortOpt = None,
    key: KeyOpt = None,
    python: PythonOpt = DEFAULT_PYTHON,
    group: GroupsOpt = None,
    accept_new: AcceptNewOpt = False,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="overwrite an existing device of this name (e.g. a new --python)"),
    ] = False,
) -> None:
    """Add a device to the inventory (with --accept-new: connect once and record its host key)."""
    device = Device(
        name=name,
        host=host,
        user=user,
        port=port,
        key=str(key.expanduser().absolute()) if key is not None else None,
        python=python,
        groups=tuple(group or ()),
    )
    add_device(device, replace_existing=replace)
    err_console.print(
        f"{'saved' if replace else 'added'} [bold]{name}[/bold] ({_where(device)}) to {inventory_path()}",
        soft_wrap=True,
    )
    if accept_new:
        verify_connection(resolve_device(name), accept_new=True)
        err_console.print(f"connected to {name}; its host key is recorded")
        next_step(f"edgesdk devices check {name}")
    else:
        next_step(f"edgesdk devices check {name} --accept-new")


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the devices: `local` and the inventory (Host aliases of ~/.ssh/config work too)."""
    devices = list_devices()
    if as_json:
        print_json([d.to_dict() for d in devices])
        return
    from rich.table import Table

    table = Table(title=f"devices ({inventory_path()})", title_justify="left")
    rows = [
        {
            "name": d.name,
            "host": "(this machine)" if d.is_local else d.host,
            "user": d.user or "",
            "port": str(d.port or ""),
            "key": d.key or "",
            "python": "(this Python)" if d.is_local else d.python,
            "groups": ",".join(d.groups),
        }
        for d in devices
    ]
    # Only the columns something is set in; names and hosts (typed back into commands) never wrap.
    columns = [c for c in rows[0] if c in ("name", "host") or any(row[c] for row in rows)]
    for column in columns:
        table.add_column(column, no_wrap=column not in ("key", "python"), overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    out_console.print(table)


@app.command("remove")
def remove_cmd(name: NameArg) -> None:
    """Remove a device from the inventory (its recorded host key stays in known_hosts)."""
    removed = remove_device(name)
    err_console.print(f"removed [bold]{removed.name}[/bold] ({_where(removed)})")


@app.command("check")
def check_cmd(
    name: Annotated[Optional[str], typer.Argument(help="device name (or use --group)")] = None,
    group: GroupOpt = None,
    accept_new: AcceptNewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Connect and print the device's facts: arch, L4T/JetPack, board, GPU/DLA, versions, disk, power."""
    if (name is None) == (group is None):
        raise typer.BadParameter("give a device NAME or --group GROUP (one of them)")
    devices = devices_in_group(group) if group is not None else [resolve_device(name or "")]
    with err_console.status(f"checking {len(devices)} device(s)…"):
        reports = check_devices(devices, accept_new=accept_new)
    if as_json:
        print_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            _render(report)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def _render(report: CheckReport) -> None:
    device = report.device
    if not report.ok:
        err_console.print(f"[bold red]error:[/bold red] {device.name}: {report.error}", soft_wrap=True)
        if report.hint:
            err_console.print(f"[dim]hint:[/dim] {report.hint}", soft_wrap=True)
        return
    assert report.facts is not None
    from rich.table import Table

    table = Table(title=f"{device.name} ({_where(device)}), {report.seconds:.1f} s", title_justify="left")
    table.add_column("fact")
    table.add_column("value")
    for label, value in fact_rows(report.facts):
        table.add_row(label, value)
    out_console.print(table)
