"""GStreamer pipeline strings (pure builders): golden strings per source kind and option."""

from __future__ import annotations

import pytest

from edgeagent.gstreamer import (
    APPSINK,
    PipelineOptionError,
    csi_pipeline,
    flip_method,
    framerate,
    gstreamer_available,
    rtsp_pipeline,
    v4l2_pipeline,
)

CSI_DEFAULT = (
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! "
    "nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
    "appsink drop=1 max-buffers=1 sync=false"
)


def test_csi_default_is_the_documented_pipeline() -> None:
    assert csi_pipeline() == CSI_DEFAULT


def test_csi_options() -> None:
    assert csi_pipeline(1, 1920, 1080, 29.97, "rotate-180") == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30000/1001 ! "
        "nvvidconv flip-method=2 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        + APPSINK
    )


@pytest.mark.parametrize(
    ("flip", "method"),
    [(None, 0), ("none", 0), ("counterclockwise", 1), ("clockwise", 3), ("horizontal", 4), ("vertical", 6), (7, 7),
     ("5", 5)],
)  # fmt: skip
def test_flip_methods(flip: object, method: int) -> None:
    assert flip_method(flip) == method  # type: ignore[arg-type]


@pytest.mark.parametrize("flip", ["upside-down", 8, -1])
def test_bad_flip_lists_the_choices(flip: object) -> None:
    with pytest.raises(PipelineOptionError, match="rotate-180"):
        flip_method(flip)  # type: ignore[arg-type]


def test_framerate_fractions() -> None:
    assert framerate(30) == "30/1"
    assert framerate(15.0) == "15/1"
    assert framerate(29.97) == "30000/1001"
    with pytest.raises(PipelineOptionError):
        framerate(0)


def test_v4l2_raw_and_mjpeg() -> None:
    assert v4l2_pipeline() == (
        'v4l2src device="/dev/video0" ! video/x-raw ! videoconvert ! video/x-raw,format=BGR ! ' + APPSINK
    )
    assert v4l2_pipeline("/dev/video1", 1280, 720, 30, "mjpeg") == (
        'v4l2src device="/dev/video1" ! image/jpeg,width=1280,height=720,framerate=30/1 ! jpegdec ! '
        "videoconvert ! video/x-raw,format=BGR ! " + APPSINK
    )
    assert v4l2_pipeline("/dev/video0", 640, 480, 30, "mjpeg", jetson=True) == (
        'v4l2src device="/dev/video0" ! image/jpeg,width=640,height=480,framerate=30/1 ! nvv4l2decoder mjpeg=1 ! '
        "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! " + APPSINK
    )
    with pytest.raises(PipelineOptionError, match="raw or mjpeg"):
        v4l2_pipeline(codec="h264")


def test_rtsp_hardware_and_software_decode() -> None:
    url = "rtsp://user:pw@10.0.0.5:554/stream1"
    assert rtsp_pipeline(url) == (
        f'rtspsrc location="{url}" latency=200 ! rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv ! '
        "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! " + APPSINK
    )
    assert rtsp_pipeline(url, "h265", 50, jetson=False) == (
        f'rtspsrc location="{url}" latency=50 ! rtph265depay ! h265parse ! avdec_h265 ! '
        "videoconvert ! video/x-raw,format=BGR ! " + APPSINK
    )


def test_injection_through_a_url_is_refused() -> None:
    with pytest.raises(PipelineOptionError, match="quotes"):
        rtsp_pipeline('rtsp://cam/" ! filesink location="/etc/passwd')


def test_every_live_pipeline_keeps_only_the_newest_frame() -> None:
    for pipeline in (csi_pipeline(), v4l2_pipeline(), rtsp_pipeline("rtsp://cam/s")):
        assert pipeline.endswith("appsink drop=1 max-buffers=1 sync=false")


def test_gstreamer_detection_matches_the_build_information() -> None:
    import cv2

    line = next(ln for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GStreamer:"))
    assert gstreamer_available() == ("YES" in line)
