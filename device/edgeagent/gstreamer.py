"""GStreamer capture pipelines for OpenCV (``cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)``).

The builders are pure functions from options to a ``gst-launch`` style string; every live
pipeline ends in ``appsink drop=1 max-buffers=1 sync=false`` so a slow consumer always gets the
newest frame instead of a growing backlog.

Jetson caveats: ``nvarguscamerasrc`` needs the ``nvargus-daemon`` service (CSI cameras only);
``nvv4l2decoder``/``nvvidconv`` are the hardware decoder and converter from JetPack's GStreamer
plugins; OpenCV from pip has no GStreamer at all (use JetPack's ``python3-opencv``).
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from typing import Dict, Optional, Union

APPSINK = "appsink drop=1 max-buffers=1 sync=false"
TO_BGR = "videoconvert ! video/x-raw,format=BGR"

#: nvvidconv ``flip-method`` values (jetson-inference names, plus the numbers themselves).
FLIP_METHODS: Dict[str, int] = {
    "none": 0,
    "counterclockwise": 1,
    "rotate-180": 2,
    "clockwise": 3,
    "horizontal": 4,
    "upper-right-diagonal": 5,
    "vertical": 6,
    "upper-left-diagonal": 7,
}

Flip = Union[str, int, None]


class PipelineOptionError(ValueError):
    """An option cannot be expressed in a pipeline (bad flip, codec, size or characters)."""


def flip_method(flip: Flip) -> int:
    """nvvidconv ``flip-method`` for a jetson-inference flip name or number (None: 0).

    Raises:
        PipelineOptionError: an unknown name or a number outside 0..7.
    """
    if flip is None:
        return 0
    if isinstance(flip, int) or str(flip).isdigit():
        value = int(flip)
        if 0 <= value <= 7:
            return value
    elif str(flip) in FLIP_METHODS:
        return FLIP_METHODS[str(flip)]
    raise PipelineOptionError(f"unknown flip {flip!r}; use one of {', '.join(FLIP_METHODS)} (or 0-7)")


def framerate(fps: float) -> str:
    """GStreamer fraction for ``fps``: 30 -> ``30/1``, 29.97 -> ``30000/1001``.

    Raises:
        PipelineOptionError: fps not positive.
    """
    if not fps or fps <= 0:
        raise PipelineOptionError(f"fps must be positive, got {fps!r}")
    for ntsc in (24000, 30000, 60000):  # 23.976, 29.97, 59.94: what cameras advertise
        if abs(fps - ntsc / 1001) < 0.005:
            return f"{ntsc}/1001"
    frac = Fraction(fps).limit_denominator(1000)
    return f"{frac.numerator}/{frac.denominator}"


def caps(
    media: str, width: Optional[int] = None, height: Optional[int] = None, fps: Optional[float] = None
) -> str:
    """A caps string, e.g. ``video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1``."""
    fields = [media]
    if width:
        fields.append(f"width={int(width)}")
    if height:
        fields.append(f"height={int(height)}")
    if fps:
        fields.append(f"framerate={framerate(fps)}")
    return ",".join(fields)


def _quoted(value: str) -> str:
    # A double-quoted property keeps '!' and spaces out of the pipeline grammar; quotes and
    # backslashes inside could still break out, so they are refused.
    if '"' in value or "\\" in value or "\n" in value:
        raise PipelineOptionError(f"refusing {value!r}: quotes, backslashes and newlines are not allowed")
    return f'"{value}"'


def csi_pipeline(
    sensor_id: int = 0, width: int = 1280, height: int = 720, fps: float = 30, flip: Flip = None
) -> str:
    """MIPI CSI camera via ``nvarguscamerasrc`` (Jetson).

    Args:
        sensor_id: the camera number (``csi://N``).
        width: capture width in pixels (a sensor mode the camera supports).
        height: capture height in pixels.
        fps: frames per second.
        flip: jetson-inference flip name (``none``, ``rotate-180``, ``horizontal``…) or 0-7.

    Returns:
        The pipeline string (BGR frames at the appsink).
    """
    return " ! ".join(
        [
            f"nvarguscamerasrc sensor-id={int(sensor_id)}",
            caps("video/x-raw(memory:NVMM)", width, height, fps),
            f"nvvidconv flip-method={flip_method(flip)}",
            "video/x-raw,format=BGRx",
            TO_BGR,
            APPSINK,
        ]
    )


def v4l2_pipeline(
    device: str = "/dev/video0",
    width: Optional[int] = None,
    height: Optional[int] = None,
    fps: Optional[float] = None,
    codec: str = "raw",
    jetson: bool = False,
) -> str:
    """USB/V4L2 camera via ``v4l2src``, raw or MJPEG.

    Args:
        device: the device node.
        width: capture width in pixels (None: the camera's default).
        height: capture height in pixels.
        fps: frames per second (None: the camera's default).
        codec: ``raw`` (YUYV and the like) or ``mjpeg`` (most USB cameras above 640x480 at 30 fps).
        jetson: decode MJPEG with the hardware ``nvv4l2decoder mjpeg=1`` instead of ``jpegdec``.

    Raises:
        PipelineOptionError: an unknown codec or a bad device string.
    """
    src = f"v4l2src device={_quoted(device)}"
    if codec == "raw":
        stages = [src, caps("video/x-raw", width, height, fps), TO_BGR]
    elif codec == "mjpeg" and jetson:
        stages = [src, caps("image/jpeg", width, height, fps), "nvv4l2decoder mjpeg=1", "nvvidconv"]
        stages += ["video/x-raw,format=BGRx", TO_BGR]
    elif codec == "mjpeg":
        stages = [src, caps("image/jpeg", width, height, fps), "jpegdec", TO_BGR]
    else:
        raise PipelineOptionError(f"unknown V4L2 codec {codec!r}; use raw or mjpeg")
    return " ! ".join(stages + [APPSINK])


_DEPAY = {"h264": "rtph264depay ! h264parse", "h265": "rtph265depay ! h265parse"}
_SOFT_DECODE = {"h264": "avdec_h264", "h265": "avdec_h265"}


def rtsp_pipeline(url: str, codec: str = "h264", latency_ms: int = 200, jetson: bool = True) -> str:
    """Network camera via ``rtspsrc``; hardware decode on a Jetson, libav software decode elsewhere.

    Args:
        url: ``rtsp://[user:pass@]host[:port]/path``.
        codec: ``h264`` or ``h265`` (what the camera streams).
        latency_ms: rtspsrc jitter buffer in milliseconds (lower: less delay, more risk of artefacts).
        jetson: use ``nvv4l2decoder ! nvvidconv`` (True) or ``avdec_*`` (False).

    Raises:
        PipelineOptionError: an unknown codec or characters that cannot be quoted.
    """
    if codec not in _DEPAY:
        raise PipelineOptionError(f"unknown RTSP codec {codec!r}; use {' or '.join(_DEPAY)}")
    head = [f"rtspsrc location={_quoted(url)} latency={int(latency_ms)}", _DEPAY[codec]]
    if jetson:
        tail = ["nvv4l2decoder", "nvvidconv", "video/x-raw,format=BGRx", TO_BGR]
    else:
        tail = [_SOFT_DECODE[codec], TO_BGR]
    return " ! ".join(head + tail + [APPSINK])


@functools.lru_cache(maxsize=1)
def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (``cv2.getBuildInformation()``)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def is_jetson() -> bool:
    """True on an NVIDIA Jetson (L4T writes ``/etc/nv_tegra_release``)."""
    return os.path.exists("/etc/nv_tegra_release")
