"""The push planner is pure: facts in, steps out. And stale-lock judgement."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgesdk.bundle import write_bundle
from edgesdk.deploy.sync import (
    AgentPackage,
    DeviceState,
    Put,
    Run,
    lock_is_stale,
    new_owner,
    owner_done,
    plan_push,
)
from edgesdk.recipe import load_recipe


@pytest.fixture()
def bundle(tmp_path: Path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"m" * 1000)
    return write_bundle(load_recipe("yunet"), [("model", model)], tmp_path / "b")


@pytest.fixture()
def agent(tmp_path: Path) -> AgentPackage:
    path = tmp_path / "edgeagent.pyz"
    path.write_bytes(b"a" * 500)
    return AgentPackage(path, "ab" * 32)


def _kinds(steps) -> list[str]:
    return [s.what if isinstance(s, Run) else f"put:{s.role}" for s in steps]


def test_fresh_device_gets_everything(bundle, agent) -> None:
    state = DeviceState("/home/u/.edgeagent", "python3", agent_present=False, missing=None)
    plan = plan_push("d", bundle, agent, state, owner="me", token="t")
    assert _kinds(plan.steps) == [
        "prepare",
        "put:agent",
        "verify agent",
        "lock",
        "put:model",
        "put:manifest",
        "verify uploads",
        "install bundle",
        "build engine",
        "activate",
        "unlock",
    ]
    assert (
        plan.files_to_send == 3
        and plan.bytes_to_send == 1000 + 500 + (bundle.root / "manifest.json").stat().st_size
    )
    puts = [s for s in plan.steps if isinstance(s, Put)]
    assert all(
        p.remote.startswith("/home/u/.edgeagent/incoming/") and p.remote.endswith(".t.part") for p in puts
    )
    assert [s for s in plan.steps if isinstance(s, Run) and s.always] == [plan.steps[-1]]


def test_up_to_date_device_gets_nothing(bundle, agent) -> None:
    state = DeviceState("/h", "python3", agent_present=True, missing=frozenset())
    plan = plan_push("d", bundle, agent, state, owner="me")
    assert plan.bytes_to_send == 0 and plan.files_skipped == 2
    assert not any(isinstance(s, Put) for s in plan.steps)
    assert "verify uploads" not in _kinds(plan.steps)


def test_hostile_paths_stay_single_arguments(bundle, agent) -> None:
    home = "/home/we ird;$(rm -rf ~)/`x`/'q'\n/.edgeagent"
    state = DeviceState(home, "/opt/py thon/bin/python3", agent_present=True, missing=None)
    plan = plan_push("d", bundle, agent, state, owner="me")
    for step in plan.steps:
        if isinstance(step, Run):
            assert step.argv[0] == "/opt/py thon/bin/python3"
            assert home in step.argv  # passed whole, as one argv item


def test_stale_lock_is_broken_only_when_known_dead(bundle, agent) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    assert lock_is_stale(f"{host}:{dead.pid}:abc")
    assert not lock_is_stale(f"other-host:{dead.pid}:abc")  # another host's deploy: never judged here
    assert not lock_is_stale(f"{host}:{os.getppid()}:abc")  # a live process
    running = new_owner()
    assert not lock_is_stale(running)
    owner_done(running)
    assert lock_is_stale(running)  # this process, that deploy is over
    state = DeviceState("/h", "python3", True, frozenset(), stale_lock=running)
    lock = next(
        s
        for s in plan_push("d", bundle, agent, state, owner="me").steps
        if isinstance(s, Run) and s.what == "lock"
    )
    assert lock.argv[lock.argv.index("--break-stale") + 1] == running
