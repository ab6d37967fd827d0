"""The MJPEG HTTP server over real sockets: page, stream, snapshot, stats, shutdown."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Iterator, List

import cv2
import numpy as np
import pytest

from edgeagent.mjpeg import BOUNDARY, MjpegServer


@pytest.fixture()
def server() -> Iterator[MjpegServer]:
    srv = MjpegServer("127.0.0.1", 0, quality=90)
    yield srv
    srv.close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


def _frame(value: int) -> np.ndarray:
    image = np.zeros((120, 160, 3), np.uint8)
    image[20:100, 30:130] = (0, 0, value)  # a red block whose brightness numbers the frame
    return image


def test_binds_a_free_port_and_reports_its_url(server: MjpegServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_page_embeds_the_stream_and_polls_stats(server: MjpegServer) -> None:
    page = _get(server.url).decode()
    assert '<img id="stream" src="/stream"' in page
    assert 'fetch("/stats"' in page


def test_snapshot_and_stats(server: MjpegServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(server.url + "snapshot.jpg")
    assert info.value.code == 503
    server.publish(_frame(200), {"fps": 12.5, "stage_ms": {"infer": 20.0}, "frames_out": 7})
    image = cv2.imdecode(np.frombuffer(_get(server.url + "snapshot.jpg"), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (120, 160, 3)
    assert abs(int(image[60, 80, 2]) - 200) < 8 and int(image[5, 5].max()) < 8
    stats = json.loads(_get(server.url + "stats"))
    assert stats["fps"] == 12.5 and stats["frames_out"] == 7 and stats["clients"] == 0


def test_unknown_path_is_404(server: MjpegServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(server.url + "nope")
    assert info.value.code == 404


def _read_parts(port: int, count: int) -> List[np.ndarray]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/stream")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    images = []
    for _ in range(count):
        assert resp.readline().strip() == f"--{BOUNDARY}".encode()
        headers = {}
        while True:
            line = resp.readline().strip()
            if not line:
                break
            key, value = line.decode().split(":", 1)
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        body = resp.read(int(headers["content-length"]))
        assert resp.read(2) == b"\r\n"
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        images.append(image)
    conn.close()
    return images


def test_stream_sends_each_new_frame_once_in_order(server: MjpegServer) -> None:
    stop = threading.Event()

    def publish() -> None:
        value = 40
        while not stop.is_set():
            server.publish(_frame(value), {})
            value = min(250, value + 10)
            time.sleep(0.03)

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        images = _read_parts(server.port, 5)
    finally:
        stop.set()
        thread.join()
    reds = [int(img[60, 80, 2]) for img in images]
    assert all(b > a for a, b in zip(reds, reds[1:])), reds  # newer frames, never the same one twice


def test_close_ends_open_streams(server: MjpegServer) -> None:
    server.publish(_frame(100), {})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/stream")
    resp = conn.getresponse()
    resp.readline()
    deadline = time.monotonic() + 2
    while server.clients != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.clients == 1
    start = time.monotonic()
    server.close()
    assert time.monotonic() - start < 3.0
    rest = resp.read()  # the server ended the response: read returns instead of blocking
    assert isinstance(rest, bytes)
    conn.close()
