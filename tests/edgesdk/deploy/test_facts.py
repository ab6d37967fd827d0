"""Fact parsers on recorded outputs (golden cases in facts/), and gathering on real machines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from edgesdk.deploy.facts import (
    FACTS,
    evaluate,
    gather_facts,
    parse_df,
    parse_gstreamer,
    parse_nvpmodel,
    register_fact,
)
from edgesdk.deploy.local import LocalTransport
from edgesdk.deploy.ssh import SSHTransport
from edgesdk.deploy.transport import Result
from edgesdk.errors import EdgeSdkInternalError
from tests.edgesdk.deploy._python38 import python38
from tests.sshd_fixture import SshServer

CASES = Path(__file__).parent / "facts"


def _section(text: str, name: str) -> str:
    """One block of a `jtop --error-log` dump: blocks split by dashes, headed `Path: X` or `X:`."""
    for block in text.split("------------------"):
        lines = block.strip("\n").splitlines()
        if lines and lines[0].strip() in (f"Path: {name}", f"{name}:"):
            return "\n".join(lines[1:]) + "\n"
    raise KeyError(f"no section {name} in the sample")


def _result(case: dict[str, Any], data_dir: Path | None) -> Result:
    source = case["input"]
    if "exit" in source:
        return Result(source["exit"], b"", source["stderr"].encode())
    if "shared" in source:
        assert data_dir is not None
        text = (data_dir / source["shared"]).read_text(encoding="utf-8")
        text = _section(text, source["section"]) if "section" in source else text
    elif "file" in source:
        text = (CASES / source["file"]).read_text(encoding="utf-8")
    else:
        text = source["text"]
    return Result(0, text.encode(), b"")


def _cases() -> list[Any]:
    return [
        pytest.param(path, id=path.stem)
        for path in sorted(CASES.glob("*.json"))
        if "fact" in path.read_text()
    ]


@pytest.mark.parametrize("path", _cases())
def test_golden_case(path: Path, request: pytest.FixtureRequest) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    data_dir = request.getfixturevalue("data_dir") if "shared" in case["input"] else None
    values, note = evaluate(FACTS[case["fact"]], _result(case, data_dir), case["input"].get("program"))
    assert values == case["expected"]
    assert note == case.get("note")


def test_every_fact_has_a_golden_case() -> None:
    covered = {json.loads(p.read_text())["fact"] for p in CASES.glob("*.json") if "fact" in p.read_text()}
    assert covered == set(FACTS)


def test_gstreamer_line_formats() -> None:
    # Constructed from the layout of cv2.getBuildInformation() ("GStreamer: YES (version)").
    assert parse_gstreamer("GStreamer:                   YES (1.16.3)") == {
        "enabled": True,
        "version": "1.16.3",
    }
    assert parse_gstreamer("GStreamer:                   NO") == {"enabled": False, "version": None}
    assert parse_gstreamer(None) == {"enabled": None, "version": None}
    with pytest.raises(ValueError):
        parse_gstreamer("Video I/O:")


def test_df_mount_point_with_spaces_and_garbage() -> None:
    text = (
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 40 60 40% /media/my disk\n"
    )
    assert parse_df(text)["disk"]["mount"] == "/media/my disk"
    with pytest.raises(ValueError):
        parse_df("df: .: No such file or directory\n")


def test_nvpmodel_ignores_warnings_and_unparseable_output_becomes_a_note() -> None:
    assert parse_nvpmodel("NVPM WARN: fan mode is not set!\nNV Power Mode: 15W\n2\n") == {
        "power_mode": {"name": "15W", "id": 2}
    }
    values, note = evaluate(FACTS["power_mode"], Result(0, b"something else\n", b""))
    assert values == {"power_mode": None} and note is not None and "could not parse" in note


def test_duplicate_fact_name_raises() -> None:
    with pytest.raises(EdgeSdkInternalError):
        register_fact("arch", ["true"], absent={}, why_absent="")(lambda text: {})


def test_local_machine_is_clearly_not_a_jetson() -> None:
    facts = gather_facts(LocalTransport(), python=sys.executable)
    values = facts.values
    assert values["jetson"] is False and values["l4t"] is None and values["power_mode"] is None
    assert "not a Jetson" in facts.notes["l4t"] and "not a Jetson" in facts.notes["power_mode"]
    assert values["arch"] and values["python"] == ".".join(map(str, sys.version_info[:3]))
    assert values["numpy"] and values["disk"]["free_bytes"] > 0
    assert set(facts.to_dict()) >= {
        "arch",
        "jetson",
        "tensorrt",
        "cuda",
        "opencv",
        "gpus",
        "dla_cores",
        "notes",
    }


def test_gather_over_ssh_with_python38(trusted_sshd: SshServer) -> None:
    python = python38() or sys.executable
    with SSHTransport(
        trusted_sshd.host,
        port=trusted_sshd.port,
        user=trusted_sshd.user,
        key=trusted_sshd.client_key,
        use_agent=False,
    ) as t:
        facts = gather_facts(t, python=python)
    assert facts.values["python_executable"] == python
    assert facts.values["jetson"] is False and facts.values["disk"] is not None
    assert not {"versions", "arch", "disk"} & set(facts.notes)
