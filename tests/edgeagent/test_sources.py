"""Sources on real files, images and a real HTTP MJPEG stream: URIs, files ending, removal, reconnects."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest

from edgeagent.gstreamer import gstreamer_available
from edgeagent.mjpeg import MjpegServer
from edgeagent.sources import (
    GStreamerUnavailable,
    Reconnect,
    SourceError,
    SourceEvent,
    SourceLost,
    SourceSpec,
    open_source,
    parse_uri,
    redact_uri,
)

FAST = Reconnect(retries=3, initial_s=0.05, max_s=0.2)


@pytest.fixture(scope="module")
def videos(data_dir: Path) -> Path:
    return data_dir / "videos"


def test_redact_uri() -> None:
    assert redact_uri("rtsp://admin:hunter2@10.0.0.5:554/h264") == "rtsp://admin:***@10.0.0.5:554/h264"
    assert redact_uri("rtsp://10.0.0.5/h264") == "rtsp://10.0.0.5/h264"
    assert redact_uri("/data/clip.mp4") == "/data/clip.mp4"


class TestParseUri:
    @pytest.mark.parametrize(
        ("uri", "spec"),
        [
            ("csi://0", SourceSpec("csi", "0")),
            ("csi://1", SourceSpec("csi", "1")),
            ("v4l2:///dev/video0", SourceSpec("v4l2", "/dev/video0")),
            ("v4l2://2", SourceSpec("v4l2", "/dev/video2")),
            ("/dev/video1", SourceSpec("v4l2", "/dev/video1")),
            ("rtsp://user:pw@cam.local:554/live", SourceSpec("rtsp", "rtsp://user:pw@cam.local:554/live")),
            ("http://cam.local:8080/stream", SourceSpec("stream", "http://cam.local:8080/stream")),
        ],
    )
    def test_device_and_network_uris(self, uri: str, spec: SourceSpec) -> None:
        assert parse_uri(uri) == spec

    def test_files_images_and_folders(self, videos: Path, sample_images: dict) -> None:
        mp4 = videos / "car-detection.mp4"
        assert parse_uri(str(mp4)) == SourceSpec("video", str(mp4))
        assert parse_uri(f"file://{mp4}") == SourceSpec("video", str(mp4))
        assert parse_uri(str(sample_images["bus"])).kind == "image"
        assert parse_uri(str(sample_images["bus"].parent)).kind == "images"

    def test_relative_file_uri(self, videos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(videos)
        assert parse_uri("file://car-detection.mp4") == SourceSpec("video", "car-detection.mp4")

    @pytest.mark.parametrize(
        ("uri", "message"),
        [
            ("csi://front", "sensor id"),
            ("ftp://x/y.mp4", "unknown source scheme"),
            ("/no/such/video.mp4", "no such"),
        ],
    )
    def test_errors_say_what_to_do(self, uri: str, message: str) -> None:
        with pytest.raises(SourceError, match=message):
            parse_uri(uri)


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_csi_without_gstreamer_names_the_fix() -> None:
    with pytest.raises(GStreamerUnavailable) as info:
        open_source("csi://0")
    assert "GStreamer" in str(info.value)
    assert "apt install python3-opencv" in info.value.hint
    assert info.value.exit_code == 3


def test_video_file_reads_every_frame_then_ends(videos: Path) -> None:
    source = open_source(str(videos / "face-demographics-walking.gif"))
    assert not source.live and source.frame_count == 35
    frames = list(source)
    assert [f.index for f in frames] == list(range(35))
    assert all(f.image_bgr.shape == (270, 480, 3) and f.image_bgr.dtype == np.uint8 for f in frames)
    assert all(b.t_capture >= a.t_capture for a, b in zip(frames, frames[1:]))


def test_mp4_frame_count_matches_the_readme(videos: Path) -> None:
    assert sum(1 for _ in open_source(str(videos / "car-detection.mp4"))) == 377


def test_loop_repeats_a_file(videos: Path) -> None:
    frames = list(open_source(str(videos / "head-pose-face-detection-female.gif"), loop=2))
    assert [f.index for f in frames] == list(range(3 * 23))
    assert np.array_equal(frames[0].image_bgr, frames[23].image_bgr)


def test_resize_and_flip_are_applied(videos: Path) -> None:
    path = str(videos / "face-demographics-walking.gif")
    plain = next(iter(open_source(path))).image_bgr
    changed = next(iter(open_source(path, width=240, height=136, flip="horizontal"))).image_bgr
    expected = cv2.resize(cv2.flip(plain, 1), (240, 136), interpolation=cv2.INTER_AREA)
    assert changed.shape == (136, 240, 3)
    assert np.array_equal(changed, expected)


def test_images_and_folders(sample_images: dict, tmp_path: Path) -> None:
    one = list(open_source(str(sample_images["zidane"])))
    assert len(one) == 1 and one[0].image_bgr.shape == (720, 1280, 3)
    for name, path in sample_images.items():
        shutil.copy(path, tmp_path / f"{name}.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    events: List[SourceEvent] = []
    frames = list(open_source(str(tmp_path), on_event=events.append))
    assert [f.image_bgr.shape[:2] for f in frames] == [
        (1080, 810),
        (720, 1280),
    ]  # broken skipped; bus, zidane
    assert [e.kind for e in events] == ["skipped"] and "broken.jpg" in events[0].message
    assert [f.name for f in frames] == ["bus.jpg", "zidane.jpg"]  # what eval --detections matches
    assert one[0].name == Path(sample_images["zidane"]).name


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


def test_option_errors(videos: Path) -> None:
    with pytest.raises(SourceError, match="both width and height"):
        open_source(str(videos / "car-detection.mp4"), width=320)
    with pytest.raises(SourceError, match="files only"):
        open_source("http://127.0.0.1:9/stream", loop=1)
    with pytest.raises(SourceError, match="unknown flip"):
        open_source(str(videos / "car-detection.mp4"), flip="sideways")


def test_pacing_and_stop_from_another_thread(videos: Path) -> None:
    source = open_source(str(videos / "car-detection.mp4"), fps=50, live=True)
    assert source.live
    threading.Timer(0.5, source.stop).start()
    start = time.monotonic()
    count = sum(1 for _ in source)
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 2.0
    assert 10 <= count <= 40  # ~25 frames at 50 fps in 0.5 s, far fewer than the 377 in the file


class TestFileDisappears:
    """A real video copied to tmp_path and removed or cut while it is being read."""

    def test_removed_file_is_reported_and_the_open_copy_finishes(self, videos: Path, tmp_path: Path) -> None:
        path = tmp_path / "clip.mp4"
        shutil.copy(videos / "car-detection.mp4", path)
        events: List[SourceEvent] = []
        count = 0
        for frame in open_source(str(path), on_event=events.append, reconnect=FAST):
            count += 1
            if frame.index == 4:
                os.remove(path)
        assert count == 377
        assert [e.kind for e in events] == ["removed"]

    def test_truncated_file_is_reported_retried_and_ends(self, videos: Path, tmp_path: Path) -> None:
        path = tmp_path / "clip.mp4"
        shutil.copy(videos / "car-detection.mp4", path)
        events: List[SourceEvent] = []
        count = 0
        for frame in open_source(str(path), on_event=events.append, reconnect=FAST):
            count += 1
            if frame.index == 4:
                os.truncate(path, path.stat().st_size // 3)
        kinds = [e.kind for e in events]
        assert 5 <= count < 377
        assert kinds[:2] == ["lost", "retry"]
        assert kinds[-1] in ("short", "gave_up")

    def test_removed_and_unreadable_raises_when_asked(self, videos: Path, tmp_path: Path) -> None:
        path = tmp_path / "clip.mp4"
        shutil.copy(videos / "car-detection.mp4", path)
        events: List[SourceEvent] = []
        source = open_source(str(path), on_event=events.append, reconnect=FAST, give_up="raise")
        with pytest.raises(SourceLost, match="gave up after 3"):
            for frame in source:
                if frame.index == 4:
                    os.truncate(path, path.stat().st_size // 3)
                    os.remove(path)
        assert [e.kind for e in events] == ["removed", "lost", "retry", "retry", "retry", "gave_up"]


class _Publisher:
    """Feeds numbered grey frames to an MJPEG server (a real HTTP camera) until stopped."""

    def __init__(self) -> None:
        self.server: MjpegServer | None = MjpegServer("127.0.0.1", 0)
        self.port = self.server.port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            server = self.server
            if server is not None:
                server.publish(np.full((96, 128, 3), (i * 7) % 256, np.uint8), {})
            i += 1
            time.sleep(0.02)

    def kill_server(self) -> None:
        server, self.server = self.server, None
        assert server is not None
        server.close()

    def restart_server(self) -> None:
        self.server = MjpegServer("127.0.0.1", self.port)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.server is not None:
            self.server.close()


@pytest.fixture()
def camera() -> object:
    pub = _Publisher()
    yield pub
    pub.close()


class TestLiveStream:
    """A live HTTP MJPEG stream (OpenCV's FFmpeg backend) whose server stops mid-run."""

    def test_reconnects_with_backoff_when_the_server_comes_back(self, camera: _Publisher) -> None:
        events: List[SourceEvent] = []
        source = open_source(f"http://127.0.0.1:{camera.port}/stream", on_event=events.append,
                             reconnect=Reconnect(retries=8, initial_s=0.1, max_s=0.8))  # fmt: skip
        assert source.live
        count, last = 0, None
        for frame in source:
            count, last = count + 1, frame
            if count == 10:
                camera.kill_server()
                threading.Timer(0.6, camera.restart_server).start()
            if count == 30:
                break
        source.close()
        kinds = [e.kind for e in events]
        assert kinds[0] == "lost" and kinds[-1] == "reconnected" and "retry" in kinds
        retries = [e for e in events if e.kind == "retry"]
        assert [e.delay_s for e in retries] == [min(0.8, 0.1 * 2**i) for i in range(len(retries))]
        assert last is not None and last.index == 29 and last.image_bgr.shape == (96, 128, 3)

    def test_gives_up_and_ends_without_a_crash(self, camera: _Publisher) -> None:
        events: List[SourceEvent] = []
        source = open_source(f"http://127.0.0.1:{camera.port}/stream", on_event=events.append, reconnect=FAST)
        count = 0
        for _ in source:
            count += 1
            if count == 5:
                camera.kill_server()
        assert count >= 5
        assert [e.kind for e in events] == ["lost", "retry", "retry", "retry", "gave_up"]

    def test_an_absent_stream_fails_at_open(self) -> None:
        with pytest.raises(SourceError, match="cannot open source"):
            open_source("http://127.0.0.1:9/stream")


def test_passwords_never_reach_messages(camera: _Publisher) -> None:
    url = f"http://viewer:s3cret@127.0.0.1:{camera.port}/stream"
    events: List[SourceEvent] = []
    source = open_source(url, on_event=events.append, reconnect=FAST)
    assert source.uri == f"http://viewer:***@127.0.0.1:{camera.port}/stream"
    for frame in source:
        if frame.index == 2:
            camera.kill_server()
    assert events and all("s3cret" not in e.uri + e.message for e in events)


def test_a_missing_camera_device_says_which_exist() -> None:
    missing = "/dev/video-edgesdk-test-none"
    with pytest.raises(SourceError, match="no such camera device") as err:
        open_source(f"v4l2://{missing}")
    assert "/dev/video" in (err.value.hint or "")  # lists the cameras there are, or says there are none
