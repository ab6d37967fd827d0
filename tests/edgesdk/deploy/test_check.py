"""check_devices: facts of many devices in parallel; one failure does not stop the others."""

from __future__ import annotations

import json
import socket

from edgesdk.deploy.check import check_device, check_devices, fact_rows
from edgesdk.deploy.facts import FACTS, Facts, evaluate
from edgesdk.deploy.inventory import LOCAL, Device
from edgesdk.deploy.transport import Result
from tests.sshd_fixture import ClientEnv, SshServer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_group_with_one_failing_device(trusted_sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    devices = [LOCAL, trusted_sshd.device("good"), Device("dead", "127.0.0.1", port=_closed_port())]
    reports = check_devices(devices)
    assert [r.device.name for r in reports] == ["local", "good", "dead"]
    assert [r.ok for r in reports] == [True, True, False]
    assert reports[2].error_type == "ConnectionFailed" and "refused" in (reports[2].error or "")
    assert reports[1].facts is not None and reports[1].facts.values["jetson"] is False
    json.dumps([r.to_dict() for r in reports])  # JSON-able


def test_unknown_key_is_a_report_with_the_remedy(sshd: SshServer, ssh_client_env: ClientEnv) -> None:
    report = check_device(sshd.device("newjet"))
    assert not report.ok and report.error_type == "UnknownHostKey"
    assert "edgesdk devices check newjet --accept-new" in (report.hint or "")
    assert check_device(sshd.device("newjet"), accept_new=True).ok


def test_rows_for_a_jetson_and_for_this_machine() -> None:
    facts = Facts()
    for name, stdout in [
        ("arch", "aarch64\n"),
        ("l4t", "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64\n"),
        ("model", "NVIDIA Orin Nano Developer Kit\x00"),
        ("soc", "nvidia,p3768-0000+p3767-0003\x00nvidia,tegra234\x00"),
        ("power_mode", "NV Power Mode: 15W\n0\n"),
    ]:
        values, _ = evaluate(FACTS[name], Result(0, stdout.encode(), b""))
        facts.values.update(values)
    rows = dict(fact_rows(facts))
    assert rows["L4T / JetPack"] == "L4T 35.3.1 / JetPack 5.1.1"
    assert rows["board"] == "NVIDIA Orin Nano Developer Kit (tegra234)"
    assert rows["GPU"].startswith("Ampere cc 8.7 (from the SoC")
    assert rows["power mode"] == "15W (id 0)"
    local = check_device(LOCAL)
    assert local.facts is not None
    assert dict(fact_rows(local.facts))["L4T / JetPack"].startswith("— (not a Jetson")
