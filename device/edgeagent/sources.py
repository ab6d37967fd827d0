"""Frame sources: camera, stream and file URIs (as jetson-inference users write them) -> BGR frames.

URIs (see :func:`parse_uri`):

- ``csi://0``: MIPI CSI camera through ``nvarguscamerasrc`` (Jetson; needs OpenCV with GStreamer).
- ``v4l2:///dev/video0``, ``/dev/video0``: USB/V4L2 camera, raw or MJPEG (GStreamer when OpenCV
  has it, else OpenCV's own V4L2 backend).
- ``rtsp://host/path``: network camera (Jetson + GStreamer: hardware ``nvv4l2decoder``; elsewhere
  OpenCV's FFmpeg backend). ``http(s)://…`` streams (e.g. MJPEG) go through FFmpeg.
- ``file://path``, or a plain path: a video file, a single image, or a folder of images.

A :class:`Source` yields :class:`Frame` objects. Files end cleanly (iteration stops). Live sources
that drop reconnect with exponential backoff (bounded by :class:`Reconnect`); a file that changes
or disappears mid-run is reported and re-opened the same way. Every incident goes to the
``on_event`` callback (default: the module logger) as a :class:`SourceEvent`, never as a crash;
only when retries are exhausted and ``give_up="raise"`` does iteration raise :class:`SourceLost`.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import NamedTuple, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from edgeagent.capture import (
    IMAGE_EXTENSIONS,
    CaptureSource,
    EventCallback,
    Frame,
    FrameOp,
    GStreamerUnavailable,
    ImageSource,
    Opener,
    Reconnect,
    Source,
    SourceError,
    SourceEvent,
    SourceLost,
)
from edgeagent.gstreamer import (
    Flip,
    PipelineOptionError,
    csi_pipeline,
    flip_method,
    gstreamer_available,
    is_jetson,
    rtsp_pipeline,
    v4l2_pipeline,
)

log = logging.getLogger(__name__)

SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "http", "https", "file")

__all__ = [
    "IMAGE_EXTENSIONS",
    "SCHEMES",
    "CaptureSource",
    "Frame",
    "GStreamerUnavailable",
    "ImageSource",
    "Reconnect",
    "Source",
    "SourceError",
    "SourceEvent",
    "SourceLost",
    "SourceSpec",
    "open_source",
    "parse_uri",
    "redact_uri",
]


class SourceSpec(NamedTuple):
    """A parsed source URI: ``kind`` is csi, v4l2, rtsp, stream, video, image or images."""

    kind: str
    location: str


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by ``***`` (``rtsp://admin:***@cam/…``), for messages and logs."""
    parts = urlsplit(str(uri))
    if parts.password is None:
        return str(uri)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def parse_uri(uri: str) -> SourceSpec:
    """Classify a source URI (pure except for looking at the file system for plain paths).

    Args:
        uri: ``csi://N``, ``v4l2:///dev/videoN`` (or ``v4l2://N``), ``/dev/videoN``, ``rtsp://…``,
            ``http(s)://…``, ``file://path`` or a path to a video, an image or a folder of images.

    Returns:
        The :class:`SourceSpec`; ``location`` is the sensor id, device path, URL or file path.

    Raises:
        SourceError: an unknown scheme, a bad CSI sensor id, or a path that does not exist.
    """
    text = str(uri).strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "csi":
        sensor = parts.netloc or parts.path.strip("/") or "0"
        if not sensor.isdigit():
            raise SourceError(f"{uri}: the CSI sensor id must be a number, e.g. csi://0")
        return SourceSpec("csi", sensor)
    if scheme == "v4l2":
        device = unquote(parts.netloc + parts.path) or "/dev/video0"
        return SourceSpec("v4l2", "/dev/video" + device if device.isdigit() else device)
    if scheme in ("rtsp", "rtsps"):
        return SourceSpec("rtsp", text)
    if scheme in ("http", "https"):
        return SourceSpec("stream", text)
    if scheme == "file":
        path = unquote(parts.netloc + parts.path)
    elif scheme and len(scheme) > 1:  # one letter: a Windows drive, still a path
        raise SourceError(f"{uri}: unknown source scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    else:
        path = text
    if path.startswith("/dev/video"):
        return SourceSpec("v4l2", path)
    if os.path.isdir(path):
        return SourceSpec("images", path)
    if not os.path.exists(path):
        raise SourceError(
            f"source {uri}: no such file or folder",
            "the path is on the device (relative: to the device user's home; on `local`: to the current folder)",
        )
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return SourceSpec("image", path)
    return SourceSpec("video", path)


# --------------------------------------------------------------------------- open_source


class _Options(NamedTuple):
    width: Optional[int]
    height: Optional[int]
    fps: Optional[float]
    flip: int
    codec: Optional[str]
    live: Optional[bool]
    loop: int
    reconnect: Reconnect
    give_up: str
    on_event: Optional[EventCallback]


_STREAM_TIMEOUTS_MS = (10000, 5000)  # open, read: a dead network source must not hang a read forever


def _flip_op(method: int) -> Optional[FrameOp]:
    ops = {
        1: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
        2: lambda im: cv2.rotate(im, cv2.ROTATE_180),
        3: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
        4: lambda im: cv2.flip(im, 1),
        5: lambda im: cv2.flip(cv2.transpose(im), -1),
        6: lambda im: cv2.flip(im, 0),
        7: lambda im: cv2.transpose(im),
    }
    return ops.get(method)


def _frame_op(opts: _Options, resize: bool) -> Optional[FrameOp]:
    """Flip, then (files and images) resize to width x height, or None when nothing to do."""
    flip = _flip_op(opts.flip)
    size = (int(opts.width), int(opts.height)) if resize and opts.width and opts.height else None
    if flip is None and size is None:
        return None

    def apply(image: np.ndarray) -> np.ndarray:
        image = flip(image) if flip is not None else image
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA) if size is not None else image

    return apply


def _capture(uri: str, opener: Opener, opts: _Options, frame_op: Optional[FrameOp] = None) -> CaptureSource:
    """A live capture (camera or stream) with the reconnect policy from ``opts``."""
    return CaptureSource(
        uri, opener, live=True, reconnect=opts.reconnect, give_up=opts.give_up, frame_op=frame_op,
        on_event=opts.on_event,
    )  # fmt: skip


def _gst_opener(pipeline: str) -> Opener:
    return lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)


def _ffmpeg_opener(url: str) -> Opener:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _STREAM_TIMEOUTS_MS[0], cv2.CAP_PROP_READ_TIMEOUT_MSEC]
    return lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG, params + [_STREAM_TIMEOUTS_MS[1]])


def _open_csi(uri: str, spec: SourceSpec, opts: _Options) -> Source:
    if not gstreamer_available():
        raise GStreamerUnavailable(
            f"{uri} needs OpenCV built with GStreamer (nvarguscamerasrc); this OpenCV has none "
            "(pip wheels never do)",
            "use JetPack's OpenCV: pip uninstall opencv-python opencv-python-headless, then "
            'sudo apt install python3-opencv; check: python3 -c "import cv2; print(cv2.getBuildInformation())"',
        )
    pipeline = csi_pipeline(
        int(spec.location), opts.width or 1280, opts.height or 720, opts.fps or 30, opts.flip
    )
    return _capture(uri, _gst_opener(pipeline), opts)


def _open_v4l2(uri: str, spec: SourceSpec, opts: _Options) -> Source:
    codec = opts.codec or "raw"
    if spec.location.startswith("/dev/") and not os.path.exists(spec.location):
        found = sorted(glob.glob("/dev/video*"))
        raise SourceError(
            f"{uri}: no such camera device",
            "cameras here: {} (USB cameras: `v4l2-ctl --list-devices`)".format(", ".join(found))
            if found
            else "no /dev/video* device exists on this machine: plug a USB camera in, or use csi://0 "
            "for a MIPI CSI camera",
        )
    if gstreamer_available():
        pipeline = v4l2_pipeline(spec.location, opts.width, opts.height, opts.fps, codec, is_jetson())
        return _capture(uri, _gst_opener(pipeline), opts, frame_op=_frame_op(opts, False))
    if codec not in ("raw", "mjpeg"):
        raise SourceError(f"{uri}: unknown V4L2 codec {codec!r}; use raw or mjpeg")

    def opener() -> cv2.VideoCapture:
        cap = cv2.VideoCapture(spec.location, cv2.CAP_V4L2)
        if codec == "mjpeg":
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, opts.width), (cv2.CAP_PROP_FRAME_HEIGHT, opts.height)):
            if value:
                cap.set(prop, float(value))
        if opts.fps:
            cap.set(cv2.CAP_PROP_FPS, float(opts.fps))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1.0)
        return cap

    return _capture(uri, opener, opts, frame_op=_frame_op(opts, False))


def _open_rtsp(uri: str, spec: SourceSpec, opts: _Options) -> Source:
    if is_jetson() and gstreamer_available():
        pipeline = rtsp_pipeline(spec.location, opts.codec or "h264", jetson=True)
        return _capture(uri, _gst_opener(pipeline), opts, frame_op=_frame_op(opts, False))
    if is_jetson():
        log.warning("%s: OpenCV has no GStreamer, decoding with FFmpeg on the CPU (no nvv4l2decoder)", uri)
    return _capture(uri, _ffmpeg_opener(spec.location), opts, frame_op=_frame_op(opts, True))


def _open_stream(uri: str, spec: SourceSpec, opts: _Options) -> Source:
    return _capture(uri, _ffmpeg_opener(spec.location), opts, frame_op=_frame_op(opts, True))


def _file_opener(path: str) -> Opener:
    # One decoder thread: the pipeline's capture stage already runs decoding beside inference, and
    # FFmpeg's own frame threads would only add CPU (about 0.2 ms a frame at 768x432) on small boards.
    prop = getattr(cv2, "CAP_PROP_N_THREADS", None)  # OpenCV >= 4.6
    params = [prop, 1] if prop is not None else []
    return lambda: cv2.VideoCapture(path, cv2.CAP_ANY, params)


def _open_video(uri: str, spec: SourceSpec, opts: _Options) -> Source:
    return CaptureSource(
        uri,
        _file_opener(spec.location),
        live=bool(opts.live),
        path=spec.location,
        reconnect=opts.reconnect,
        give_up=opts.give_up,
        loop=opts.loop,
        pace_fps=opts.fps,
        frame_op=_frame_op(opts, True),
        on_event=opts.on_event,
    )


def _open_images(uri: str, spec: SourceSpec, opts: _Options) -> Source:
    if spec.kind == "image":
        paths = [spec.location]
    else:
        names = sorted(n for n in os.listdir(spec.location) if n.lower().endswith(IMAGE_EXTENSIONS))
        paths = [os.path.join(spec.location, n) for n in names]
    return ImageSource(uri, paths, loop=opts.loop, frame_op=_frame_op(opts, True), on_event=opts.on_event)


_OPENERS = {
    "csi": _open_csi,
    "v4l2": _open_v4l2,
    "rtsp": _open_rtsp,
    "stream": _open_stream,
    "video": _open_video,
    "image": _open_images,
    "images": _open_images,
}


def open_source(
    uri: str,
    *,
    width: Optional[int] = None,
    height: Optional[int] = None,
    fps: Optional[float] = None,
    flip: Flip = None,
    codec: Optional[str] = None,
    live: Optional[bool] = None,
    loop: int = 0,
    reconnect: Reconnect = Reconnect(),
    give_up: str = "end",
    on_event: Optional[EventCallback] = None,
) -> Source:
    """Open a frame source from a URI (see :func:`parse_uri` for the forms).

    Args:
        uri: the source URI or path.
        width: cameras: capture width in pixels; files/images/streams: resize frames to it (with height).
        height: capture or resize height in pixels.
        fps: cameras: capture rate; video files: pace reading to this rate (simulates a camera).
        flip: jetson-inference flip name (``rotate-180``, ``horizontal``…) or nvvidconv 0-7.
        codec: V4L2 ``raw``/``mjpeg``; RTSP ``h264``/``h265``.
        live: force live behaviour (drop the oldest frame when behind) for a video file.
        loop: files and images: extra passes (-1: forever).
        reconnect: backoff for dropped live sources and changed files.
        give_up: ``end`` or ``raise`` (:class:`SourceLost`) when reconnecting fails.
        on_event: receives :class:`SourceEvent` objects (default: logged).

    Returns:
        An open :class:`Source`.

    Raises:
        SourceError: a malformed URI, a missing path, bad options, or a device that cannot be opened.
        GStreamerUnavailable: ``csi://`` with an OpenCV built without GStreamer.
    """
    spec = parse_uri(uri)
    uri = redact_uri(uri)  # what messages, events and sinks show; the opener uses spec.location
    if (width is None) != (height is None) and spec.kind not in ("csi", "v4l2"):
        raise SourceError(f"{uri}: give both width and height to resize frames, or neither")
    if spec.kind not in ("video", "image", "images") and (loop or live is not None):
        raise SourceError(f"{uri}: loop and live apply to files only; a {spec.kind} source is always live")
    try:
        method = flip_method(flip)
    except PipelineOptionError as err:
        raise SourceError(f"{uri}: {err}") from err
    opts = _Options(width, height, fps, method, codec, live, loop, reconnect, give_up, on_event)
    try:
        return _OPENERS[spec.kind](uri, spec, opts)
    except PipelineOptionError as err:
        raise SourceError(f"{uri}: {err}") from err
