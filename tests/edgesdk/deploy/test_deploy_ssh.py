"""Deploy over a REAL OpenSSH server on 127.0.0.1 (tests/sshd_fixture.py): end to end, host keys,
re-deploy sends nothing, a connection killed mid-push leaves the previous deployment active."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeagent.store import Store
from edgesdk.deploy.flow import deploy, prepare
from edgesdk.deploy.inventory import Device
from edgesdk.recipe import load_recipe, override
from tests.sshd_fixture import SshServer


def _device(server: SshServer, name: str = "jetson01", port: int | None = None) -> Device:
    return server.device(name, port=port or server.port, python=sys.executable)


class CutProxy:
    """A TCP relay in front of sshd whose connections the test can cut at any moment."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Drop every connection now (as a pulled cable or a dead Wi-Fi link would)."""
        with self.lock:
            for sock in self.socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture()
def proxy(trusted_sshd: SshServer) -> Iterator[CutProxy]:
    relay = CutProxy((trusted_sshd.host, trusted_sshd.port))
    yield relay
    relay.close()


def _current(server: SshServer, recipe: str) -> str | None:
    return Store(str(server.home / ".edgeagent")).deployment(recipe)["current"]


def test_deploy_over_ssh_and_redeploy(trusted_sshd: SshServer, models_dir: Path, tmp_path: Path) -> None:
    recipe = override(load_recipe("yunet"), {"name": "yunet-ssh"})
    device = _device(trusted_sshd)
    [first] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir)
    assert first.ok, first.error
    assert first.bytes_sent > 300_000 and first.build["backend"] == "ort"
    assert _current(trusted_sshd, "yunet-ssh") == first.bundle
    [again] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir)
    assert again.ok and again.bytes_sent == 0 and again.build["cached"] is True


def test_unknown_host_key_refused_then_accept_new(
    sshd: SshServer, ssh_client_env, models_dir: Path, tmp_path: Path
) -> None:
    recipe = load_recipe("yunet")
    device = _device(sshd, "newbox")
    [refused] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir)
    assert not refused.ok and "host key" in (refused.error or "").lower()
    assert refused.bytes_sent == 0
    [accepted] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir, accept_new=True)
    assert accepted.ok, accepted.error
    [trusted] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir)  # now known, no flag needed
    assert trusted.ok


def test_changed_host_key_always_refused(
    sshd_private: SshServer, ssh_client_env, models_dir: Path, tmp_path: Path
) -> None:
    recipe = load_recipe("yunet")
    device = _device(sshd_private, "rekeyed")
    [first] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir, accept_new=True)
    assert first.ok
    sshd_private.rotate_host_key()
    [refused] = deploy(recipe, [device], tmp_path / "w", model_dir=models_dir, accept_new=True)
    assert not refused.ok and "changed" in (refused.error or "").lower()


def test_push_cut_mid_transfer_keeps_previous(
    trusted_sshd: SshServer, proxy: CutProxy, models_dir: Path, tmp_path: Path
) -> None:
    device = _device(trusted_sshd, "flaky", port=proxy.port)
    base = override(load_recipe("yunet"), {"name": "yunet-cut"})
    [good] = deploy(base, [device], tmp_path / "w", model_dir=models_dir, accept_new=True)
    assert good.ok, good.error
    # Another model file, so the push has real bytes to send; cut the link halfway through it.
    other = override(base, {"model.path": "yunet_n/yunet_n_320_320.onnx", "input.shape": [1, 3, 320, 320]})
    cuts: list[int] = []

    def cut(_device: str, kind: str, data: dict) -> None:
        if kind == "bytes" and not cuts and data["total"] > 100_000 and data["done"] >= data["total"] // 2:
            cuts.append(data["done"])
            proxy.cut()

    [broken] = deploy(other, [device], tmp_path / "w", model_dir=models_dir, on_event=cut)
    assert cuts, "the transfer never reached the cut point"
    assert not broken.ok
    assert _current(trusted_sshd, "yunet-cut") == good.bundle  # still the previous deployment
    [after] = deploy(other, [device], tmp_path / "w", model_dir=models_dir)
    assert after.ok, after.error
    assert _current(trusted_sshd, "yunet-cut") == after.bundle != good.bundle
    incoming = trusted_sshd.home / ".edgeagent" / "incoming"
    assert list(incoming.iterdir()) == []  # the cut push's partial upload was cleaned


def test_group_deploy_one_bad_device(trusted_sshd: SshServer, models_dir: Path, tmp_path: Path) -> None:
    good = _device(trusted_sshd, "good")
    bad = Device(name="bad", host="127.0.0.1", port=1, user="nobody", python=sys.executable)
    reports = deploy(load_recipe("yunet"), [good, bad], tmp_path / "w", model_dir=models_dir)
    by_name = {r.device: r for r in reports}
    assert by_name["good"].ok
    assert not by_name["bad"].ok and "127.0.0.1" in (by_name["bad"].error or "")


def test_hostile_file_names(trusted_sshd: SshServer, models_dir: Path, tmp_path: Path) -> None:
    """A model file named like a shell injection deploys fine and runs nothing."""
    evil_dir = tmp_path / "we ird $(touch PWNED) `touch PWNED2`"
    evil_dir.mkdir()
    evil = evil_dir / "m;$(touch PWNED3)'\"\né.onnx"
    evil.write_bytes((models_dir / "yunet_n" / "yunet_n_640_640.onnx").read_bytes())
    recipe = override(load_recipe("yunet"), {"name": "yunet-evil"})
    [report] = deploy(recipe, [_device(trusted_sshd)], tmp_path / "w", model=evil, model_dir=models_dir)
    assert report.ok, report.error
    for root in (tmp_path, trusted_sshd.home, Path.cwd()):
        assert not list(root.rglob("PWNED*"))


def test_hostile_recipe_name(trusted_sshd: SshServer, models_dir: Path, tmp_path: Path) -> None:
    # Recipe names are validated to [a-z0-9._-]; the device path and argv stay safe by construction.
    base = load_recipe("yunet")
    with pytest.raises(Exception, match="name"):
        override(base, {"name": "x; rm -rf ~"})
    prepared = prepare(base, tmp_path / "w", model_dir=models_dir)
    assert prepared.bundle.manifest["recipe"]["name"] == "yunet"
