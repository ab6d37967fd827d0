"""Sinks: URI forms, and what each one writes (read back with OpenCV / json / HTTP)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeagent.backends.ort import OrtBackend
from edgeagent.capture import Frame
from edgeagent.pipeline import Pipeline
from edgeagent.sinks import (
    DisplaySink,
    ImageDirSink,
    JsonlSink,
    MjpegSink,
    SinkError,
    StreamInfo,
    VideoFileSink,
    open_sink,
)
from edgeagent.sources import open_source
from edgeagent.vision.draw import palette
from edgeagent.vision.types import Detections
from edgesdk.recipe import load_recipe

INFO = StreamInfo(["person", "car"], 12.5, "test://")


def _frame(index: int, size: tuple = (240, 320)) -> Frame:
    image = np.zeros(size + (3,), np.uint8)
    image[:, : 10 + 10 * index] = (0, 255, 0)
    return Frame(index, image, time.monotonic())


def _dets(with_landmarks: bool = False) -> Detections:
    boxes = np.array([[10.123, 20.0, 110.5, 200.25], [50.0, 60.0, 70.0, 80.0]], np.float32)
    lms = np.arange(20, dtype=np.float32).reshape(2, 5, 2) if with_landmarks else None
    return Detections(boxes, np.array([0.9, 0.41], np.float32), np.array([1, 7], np.int64), lms)


class TestOpenSink:
    @pytest.mark.parametrize(
        ("uri", "cls"),
        [("out.mp4", VideoFileSink), ("file://out.avi", VideoFileSink), ("dets.jsonl", JsonlSink),
         ("jsonl://x/dets.txt", JsonlSink), ("frames/", ImageDirSink), ("dir://frames", ImageDirSink)],
    )  # fmt: skip
    def test_forms(self, uri: str, cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        sink = open_sink(uri)
        try:
            assert isinstance(sink, cls)
        finally:
            sink.close()

    def test_mjpeg_binds_the_requested_interface_and_port(self) -> None:
        sink = open_sink("mjpeg://127.0.0.1:0")
        try:
            assert isinstance(sink, MjpegSink) and sink.port > 0
            assert sink.url == f"http://127.0.0.1:{sink.port}/"
        finally:
            sink.close()

    @pytest.mark.parametrize(
        ("uri", "message"),
        [("out.gif", "cannot tell"), ("udp://1.2.3.4:5000", "unknown sink scheme"), ("mjpeg://:http", "bad port"),
         ("jsonl://", "missing the path")],
    )  # fmt: skip
    def test_errors(self, uri: str, message: str) -> None:
        with pytest.raises(SinkError, match=message):
            open_sink(uri)

    def test_unknown_option_lists_the_allowed_ones(self, tmp_path: Path) -> None:
        with pytest.raises(SinkError, match="allowed: fourcc, fps"):
            open_sink(str(tmp_path / "out.mp4"), quality=3)

    def test_busy_port_says_what_to_do(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            port = sock.getsockname()[1]
            with pytest.raises(SinkError) as info:
                open_sink(f"mjpeg://127.0.0.1:{port}")
        assert "another port" in info.value.hint


class TestDisplay:
    def test_no_display_suggests_mjpeg(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        with pytest.raises(SinkError) as info:
            open_sink("display://")
        assert "no display" in str(info.value) and "mjpeg://" in info.value.hint

    def test_headless_opencv_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if "GUI:                           NONE" not in cv2.getBuildInformation():
            pytest.skip("this OpenCV has a GUI backend")
        monkeypatch.setenv("DISPLAY", ":0")
        with pytest.raises(SinkError, match="no GUI support"):
            DisplaySink("display://")


@pytest.mark.parametrize(("name", "fourcc"), [("out.mp4", "mp4v"), ("sub/out.avi", "MJPG")])
def test_video_file_round_trip(tmp_path: Path, name: str, fourcc: str) -> None:
    path = tmp_path / name
    sink = open_sink(str(path))
    sink.start(INFO)
    for i in range(10):
        sink.write(_frame(i), Detections.empty(), {})
    sink.close()
    sink.close()  # idempotent
    assert isinstance(sink, VideoFileSink) and sink.fourcc == fourcc
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5, abs=0.01)
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    assert len(frames) == 10 and frames[0].shape == (240, 320, 3)
    green = [int((f[:, :, 1] > 128).all(axis=0).sum()) for f in frames]  # green columns grow by 10 per frame
    assert all(abs(g - (10 + 10 * i)) <= 4 for i, g in enumerate(green)), green


def test_image_folder(tmp_path: Path) -> None:
    sink = open_sink(f"dir://{tmp_path}/shots", ext="png")
    sink.start(INFO)
    for i in (0, 1, 12):
        sink.write(_frame(i), Detections.empty(), {})
    sink.write(_frame(13)._replace(name="bus.jpg"), Detections.empty(), {})  # from an image source
    sink.close()
    names = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert names == ["000000.png", "000001.png", "000012.png", "000013-bus.png"]
    image = cv2.imread(str(tmp_path / "shots" / "000012.png"))
    assert image is not None
    assert np.array_equal(image, _frame(12).image_bgr)  # PNG is lossless


def test_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "out" / "dets.jsonl"
    sink = open_sink(f"jsonl://{path}")
    assert not sink.annotated
    sink.start(INFO)
    sink.write(_frame(0), _dets(with_landmarks=True), {"latency_ms": 12.5})
    sink.write(_frame(1), Detections.empty(), {})
    sink.close()
    first, second = [json.loads(line) for line in path.read_text().splitlines()]
    assert first["index"] == 0 and first["latency_ms"] == 12.5 and abs(first["time"] - time.time()) < 60
    dets = first["detections"]
    assert dets["boxes"] == [[10.12, 20.0, 110.5, 200.25], [50.0, 60.0, 70.0, 80.0]]
    assert dets["scores"] == [0.9, 0.41]
    assert dets["class_ids"] == [1, 7]
    assert dets["classes"] == ["car", "7"]  # an id past the class list is named by its number
    assert dets["landmarks"][1][4] == [18.0, 19.0]
    assert second["detections"] == {
        "boxes": [],
        "scores": [],
        "class_ids": [],
        "classes": [],
        "landmarks": None,
    }


def test_jsonl_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot"):
        open_sink(f"jsonl://{blocker}/dets.jsonl")


def test_mjpeg_sink_serves_what_it_is_written(tmp_path: Path) -> None:
    sink = open_sink("mjpeg://127.0.0.1:0", quality=95)
    assert isinstance(sink, MjpegSink)
    try:
        sink.start(INFO)
        sink.write(_frame(5), Detections.empty(), {"fps": 9.5, "frames_out": 6})
        with urllib.request.urlopen(sink.url + "snapshot.jpg", timeout=5) as resp:
            image = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
        with urllib.request.urlopen(sink.url + "stats", timeout=5) as resp:
            stats = json.loads(resp.read())
    finally:
        sink.close()
    assert (
        image is not None
        and image.shape == (240, 320, 3)
        and int((image[:, :, 1] > 128).all(axis=0).sum()) in range(56, 65)
    )
    assert stats["fps"] == 9.5 and stats["frames_out"] == 6


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (CI installs it)")
def test_mjpeg_page_in_headless_chromium_shows_drawn_boxes(
    models_dir: Path, sample_images: dict, tmp_path: Path
) -> None:
    recipe = load_recipe("yolov5n").resolved()
    sink = open_sink("mjpeg://127.0.0.1:0", quality=95)
    assert isinstance(sink, MjpegSink)
    with OrtBackend(str(models_dir / recipe["model"]["path"])) as backend:
        source = open_source(str(sample_images["bus"].parent), loop=-1)  # bus.jpg, zidane.jpg: people
        pipeline = Pipeline(source, backend, recipe, [sink])
        runner = threading.Thread(target=pipeline.run, kwargs={"duration": 60})
        runner.start()
        try:
            shot = tmp_path / "page.png"
            subprocess.run(
                ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
                 "--virtual-time-budget=3000", f"--screenshot={shot}", sink.url],
                cwd=tmp_path, capture_output=True, timeout=120, check=True,
            )  # fmt: skip
        finally:
            pipeline.stop()
            runner.join(timeout=10)
    page = cv2.imread(str(shot))
    assert page is not None and page.shape[:2] == (900, 1280)
    assert float(page.std()) > 10.0  # not blank
    person = palette(80)[0].astype(int)  # the class colour of boxes and label backgrounds
    near = np.abs(page.astype(int) - person).sum(axis=2) < 40
    assert int(near.sum()) > 300, int(near.sum())
    assert not runner.is_alive()
