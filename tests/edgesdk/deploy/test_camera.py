"""`edgesdk run` / `bench` through the agent: on `local` and over the real loopback sshd (with --view)."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgesdk.deploy.camera import bench_on_device, run_on_device
from edgesdk.deploy.flow import deploy, deployment_status, rollback
from edgesdk.deploy.inventory import LOCAL
from edgesdk.errors import DeviceError
from edgesdk.recipe import load_recipe, override
from tests.sshd_fixture import SshServer

GIF_FRAMES = 23  # head-pose-face-detection-female.gif (videos/README.md)


@pytest.fixture()
def gif(data_dir: Path) -> str:
    return str(data_dir / "videos" / "head-pose-face-detection-female.gif")


@pytest.fixture()
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "device-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _yunet320():
    return override(
        load_recipe("yunet"), {"model.path": "yunet_n/yunet_n_320_320.onnx", "input.shape": [1, 3, 320, 320]}
    )


def test_run_local_whole_file_to_jsonl(
    local_home: Path, models_dir: Path, tmp_path: Path, gif: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [report] = deploy(_yunet320(), [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert report.ok, report.error
    here = tmp_path / "here"
    (here / "clips").mkdir(parents=True)
    (here / "clips" / "face.gif").write_bytes(Path(gif).read_bytes())
    monkeypatch.chdir(here)  # on `local`, relative paths are relative to where the user is
    stats: list[dict] = []
    result = run_on_device(LOCAL, "yunet", tmp_path / "w", source="clips/face.gif", sinks=["faces.jsonl", "frames/"],
                           on_event=lambda k, d: stats.append(d) if k == "stats" else None)  # fmt: skip
    assert result.summary["frames_out"] == GIF_FRAMES and result.summary["stop_reason"] == "end"
    assert result.summary["outputs"] == [str(here / "faces.jsonl"), str(here / "frames")]  # `run` prints them
    assert stats and stats[-1]["final"] is True
    assert (
        len(list((here / "frames").glob("*.jpg"))) == GIF_FRAMES and not (local_home / "faces.jsonl").exists()
    )
    lines = (here / "faces.jsonl").read_text().splitlines()
    assert len(lines) == GIF_FRAMES
    assert (
        sum(len(json.loads(line)["detections"]) for line in lines) >= GIF_FRAMES // 2
    )  # one face, most frames


def test_bench_local_report(local_home: Path, models_dir: Path, tmp_path: Path, gif: str) -> None:
    [data] = bench_on_device(LOCAL, _yunet320(), tmp_path / "w", precisions=["fp32"], source=gif,
                             warmup=2, model_dir=models_dir)  # fmt: skip
    assert data["frames"] == GIF_FRAMES and data["dropped"] == 0
    assert data["infer_fps"] > 0 and data["e2e_fps"] > 0
    for stage in ("capture", "preprocess", "infer", "postprocess", "e2e", "infer_only"):
        s = data["latency_ms"][stage]
        assert s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert data["precision"] == "fp32" and data["device"] == "local" and data["engine"]
    assert Path(data["report_path"]).is_file()  # the agent kept its own copy on the device


def test_run_passes_the_source_options(
    local_home: Path, models_dir: Path, tmp_path: Path, gif: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    [report] = deploy(_yunet320(), [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert report.ok, report.error
    monkeypatch.chdir(tmp_path)
    run_on_device(LOCAL, "yunet", tmp_path / "w", source=gif, sinks=["small/"], frames=3,
                  camera={"width": 160, "height": 120})  # fmt: skip
    shapes = {cv2.imread(str(p)).shape for p in (tmp_path / "small").glob("*.jpg")}
    assert shapes == {(120, 160, 3)}  # files are resized to --width x --height
    looped = run_on_device(LOCAL, "yunet", tmp_path / "w", source=gif, sinks=["twice.jsonl"],
                           camera={"loop": 1, "width": 160, "height": 120})  # fmt: skip
    assert looped.summary["frames_out"] == 2 * GIF_FRAMES  # --loop 1: one more pass
    assert len((tmp_path / "twice.jsonl").read_text().splitlines()) == 2 * GIF_FRAMES


def test_bench_leaves_the_earlier_deployment_active(
    local_home: Path, models_dir: Path, tmp_path: Path, gif: str
) -> None:
    from edgeagent.engines import EngineCache
    from edgeagent.store import Store

    store = Store(str(local_home / ".edgeagent"))
    [first] = deploy(_yunet320(), [LOCAL], tmp_path / "w", model_dir=models_dir)  # the recipe's fp16
    assert first.ok, first.error
    fp32, fp16 = bench_on_device(LOCAL, _yunet320(), tmp_path / "w", precisions=["fp32", "fp16"], source=gif,
                                 frames=5, warmup=1, model_dir=models_dir)  # fmt: skip
    assert fp32["requested_precision"] == "fp32" and fp32["engine"] != first.engine  # it ran its own build
    assert fp16["engine"] == first.engine  # the last precision is the user's own bundle again...
    # ... and put the user's back, with its history: `rollback` must not go to the benchmark's deploy
    assert store.deployment("yunet") == {"current": first.bundle, "history": []}
    active = EngineCache(store.path("engines")).active("yunet")
    assert active is not None and active.key == first.engine


def test_run_not_deployed(local_home: Path, tmp_path: Path, gif: str) -> None:
    with pytest.raises(DeviceError, match="not deployed") as err:
        run_on_device(LOCAL, "yolox-nano", tmp_path / "w", source=gif)
    assert "edgesdk deploy yolox-nano --device local" in (err.value.hint or "")  # the host's name for it


def test_run_over_ssh_with_view(
    trusted_sshd: SshServer, models_dir: Path, tmp_path: Path, data_dir: Path
) -> None:
    device = trusted_sshd.device("cam", python=sys.executable)
    [report] = deploy(_yunet320(), [device], tmp_path / "w", model_dir=models_dir)
    assert report.ok, report.error
    seen: dict[str, bytes] = {}

    def fetch(url: str) -> None:
        seen["page"] = urllib.request.urlopen(url, timeout=10).read()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "snapshot" not in seen:
            try:
                seen["snapshot"] = urllib.request.urlopen(url + "snapshot.jpg", timeout=10).read()
            except urllib.error.HTTPError as err:  # 503 until the first frame is published
                assert err.code == 503
                time.sleep(0.2)

    threads: list[threading.Thread] = []

    def on_event(kind: str, data: dict) -> None:
        if kind == "sink" and data.get("view_url"):
            threads.append(threading.Thread(target=fetch, args=(data["view_url"],)))
            threads[-1].start()

    video = str(data_dir / "videos" / "one-by-one-person-detection.mp4")
    result = run_on_device(
        device, "yunet", tmp_path / "w", source=video, duration=4.0, view=True, on_event=on_event
    )
    for thread in threads:
        thread.join(timeout=15)
    assert result.view_url and result.view_url.startswith("http://127.0.0.1:")
    assert b"<img" in seen["page"]
    assert seen["snapshot"][:2] == b"\xff\xd8"  # a JPEG frame, forwarded over SSH
    assert result.summary["stop_reason"] in ("duration", "end") and result.summary["frames_out"] > 0

    # a benchmark over SSH puts the deployment back, with its history (`edgesdk status` reads it)
    [data] = bench_on_device(device, _yunet320(), tmp_path / "w", precisions=["fp32"], source=video,
                             frames=5, warmup=1, model_dir=models_dir)  # fmt: skip
    assert data["device"] == "cam" and data["engine"] != report.engine
    status = deployment_status(device, tmp_path / "w")["recipes"]["yunet"]
    assert (status["current"], status["history"], status["engine"]) == (report.bundle, [], report.engine)

    # errors over SSH name the device as the user calls it (its hint is a command they can paste)
    with pytest.raises(
        DeviceError, match=r"failed on cam \(.*@127\.0\.0\.1:\d+\): yolox-nano is not deployed"
    ) as err:
        run_on_device(device, "yolox-nano", tmp_path / "w", source=video)
    assert "edgesdk deploy yolox-nano --device cam`" in (err.value.hint or "")
    with pytest.raises(DeviceError, match="yunet has no earlier deployment") as err:
        rollback("yunet", device, tmp_path / "w")
    assert "edgesdk status --device cam" in (err.value.hint or "")
    with pytest.raises(DeviceError, match="yolox-nano is not deployed"):
        rollback("yolox-nano", device, tmp_path / "w")


def test_relative_paths_on_local_are_from_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesdk.deploy.camera import on_device
    from edgesdk.deploy.inventory import Device

    monkeypatch.chdir(tmp_path)
    assert on_device("clips/a.mp4", LOCAL) == str(tmp_path / "clips" / "a.mp4")
    assert on_device("frames/", LOCAL) == str(tmp_path / "frames") + "/"  # still a folder sink
    for uri in (
        "csi://0",
        "/dev/video0",
        "rtsp://cam/stream",
        "mjpeg://:8080",
        "jsonl:///tmp/d.jsonl",
        "dir:///x",
    ):
        assert on_device(uri, LOCAL) == uri
    # the path schemes too (`dir://frames` wrote into the agent's home), options and spaces kept
    assert on_device("dir://frames?ext=png", LOCAL) == f"dir://{tmp_path}/frames?ext=png"
    assert on_device("jsonl://out/d.jsonl", LOCAL) == f"jsonl://{tmp_path}/out/d.jsonl"
    assert on_device("file://my%20clips/a.mp4", LOCAL) == f"file://{tmp_path}/my%20clips/a.mp4"
    assert on_device("clips/a.mp4", Device(name="jetson01", host="10.0.0.2")) == "clips/a.mp4"  # its home
