"""Where annotated frames and detections go: a window, a video file, MJPEG over HTTP, JSON lines, images.

URIs (see :func:`open_sink`):

- ``display://`` (``display://0``): an OpenCV window (needs a display and an OpenCV with GUI).
- ``out.mp4``, ``file://out.avi`` (also .mkv, .mov): a video file (OpenCV ``mp4v`` / ``MJPG``).
- ``mjpeg://:8080``, ``mjpeg://0.0.0.0:8080``, ``mjpeg://127.0.0.1:0``: an HTTP server with a page,
  ``/stream``, ``/snapshot.jpg`` and ``/stats`` (see :mod:`edgeagent.mjpeg`).
- ``jsonl://dets.jsonl`` or ``dets.jsonl``: one JSON object per frame with the detections.
- ``dir://frames/`` or ``frames/``: one JPEG (or PNG) per frame.

Lifecycle: ``start(info)`` once, ``write(frame, detections, stats)`` per frame, ``close()``.
Image sinks get the annotated frame (the pipeline draws once for all of them); a sink may raise
:class:`StopStream` to end the run cleanly (the display does when the user presses q or Esc).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from edgeagent.capture import Frame
from edgeagent.events import AgentError, BadInput
from edgeagent.mjpeg import MjpegServer
from edgeagent.vision.types import Detections

log = logging.getLogger(__name__)

VIDEO_FOURCC = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
FORMS = "display://, out.mp4 (file://…; .mp4 .avi .mkv .mov), mjpeg://[host]:port, jsonl://path, dir://path/"


class SinkError(BadInput):
    """A sink URI is malformed or the sink cannot be opened (message says what to do)."""

    kind = "SinkError"


class StopStream(AgentError):
    """Raised by a sink to end the run cleanly (not an error: e.g. the viewer closed the window)."""

    kind = "StopStream"


class StreamInfo(NamedTuple):
    """What sinks know before the first frame.

    Attributes:
        class_names: names indexed by class id.
        fps: the source's nominal frames per second, or None.
        source: the source URI.
    """

    class_names: List[str]
    fps: Optional[float] = None
    source: str = ""


class Sink:
    """Base class. ``annotated``: True when the sink shows pixels (the pipeline then draws)."""

    annotated = True

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.info = StreamInfo([])

    def start(self, info: StreamInfo) -> None:
        """Called once before the first frame."""
        self.info = info

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        """Consume one frame.

        Args:
            frame: the frame; its image is already annotated when ``annotated`` is True.
            detections: boxes etc. in the frame's pixels.
            stats: per-frame numbers (``index``, ``fps``, ``stage_ms``, ``latency_ms``, ``frames_out``,
                ``dropped``, ``detections``), JSON-able.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release; safe to call twice."""


class DisplaySink(Sink):
    """An OpenCV window; q or Esc (or closing the window) raises :class:`StopStream`."""

    def __init__(self, uri: str, title: str = "edgeagent") -> None:
        super().__init__(uri)
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SinkError(
                f"{uri}: no display here ($DISPLAY and $WAYLAND_DISPLAY are unset)",
                "use --sink mjpeg://:8080 and open the page in a browser, or run from a desktop session",
            )
        if _opencv_gui() == "NONE":
            raise SinkError(
                f"{uri}: this OpenCV has no GUI support (opencv-python-headless?)",
                "install JetPack's OpenCV (sudo apt install python3-opencv) or opencv-python, or use mjpeg://",
            )
        self.title = title
        self._shown = self._seen_visible = False

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        cv2.imshow(self.title, frame.image_bgr)
        self._shown = True
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            raise StopStream("display closed by the user (q/Esc)")
        # Some GUI backends do not report visibility (-1 always): only a window once seen visible
        # and now gone counts as closed.
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        if visible >= 1:
            self._seen_visible = True
        elif self._seen_visible:
            raise StopStream("display window closed by the user")

    def close(self) -> None:
        if self._shown:
            cv2.destroyWindow(self.title)
            self._shown = False


def _opencv_gui() -> str:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip()
    return "UNKNOWN"


class VideoFileSink(Sink):
    """A video file written with ``cv2.VideoWriter`` (opened at the first frame, at its size).

    Args:
        uri: the URI.
        path: output file; its folder is created.
        fourcc: four-character codec (default by extension: mp4v for .mp4/.mov, MJPG for .avi/.mkv).
        fps: frame rate written in the file (default: the source's, else 30).
    """

    def __init__(
        self, uri: str, path: str, fourcc: Optional[str] = None, fps: Optional[float] = None
    ) -> None:
        super().__init__(uri)
        ext = os.path.splitext(path)[1].lower()
        self.fourcc = fourcc or VIDEO_FOURCC.get(ext, "")
        if len(self.fourcc) != 4:
            raise SinkError(
                f"{uri}: pick a fourcc for {ext!r} files, or use one of {', '.join(VIDEO_FOURCC)}"
            )
        self.path, self.fps = path, fps
        self._writer: Optional[cv2.VideoWriter] = None
        self.frames = 0

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        image = frame.image_bgr
        if self._writer is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            fps = float(self.fps or self.info.fps or 30.0)
            size = (int(image.shape[1]), int(image.shape[0]))
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter.fourcc(*self.fourcc), fps, size)
            if not self._writer.isOpened():
                raise SinkError(
                    f"{self.uri}: OpenCV cannot write {self.fourcc} video to {self.path}",
                    "try another extension (.avi uses MJPG, which every OpenCV build writes)",
                )
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class ImageDirSink(Sink):
    """One image file per frame, ``<index:06d>.<ext>``, in a folder (created).

    Args:
        uri: the URI.
        path: the folder.
        ext: ``jpg`` or ``png``.
        quality: JPEG quality 1-100.
    """

    def __init__(self, uri: str, path: str, ext: str = "jpg", quality: int = 90) -> None:
        super().__init__(uri)
        if ext not in ("jpg", "png"):
            raise SinkError(f"{uri}: image format {ext!r}; use jpg or png")
        os.makedirs(path, exist_ok=True)
        self.path, self.ext = path, ext
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == "jpg" else []

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        # image sources: the annotated copy keeps the file's name (after the frame number, which
        # keeps copies of repeated passes apart and the folder in frame order)
        stem = (
            f"{frame.index:06d}"
            if frame.name is None
            else f"{frame.index:06d}-{os.path.splitext(frame.name)[0]}"
        )
        name = os.path.join(self.path, f"{stem}.{self.ext}")
        if not cv2.imwrite(name, frame.image_bgr, self._params):
            raise SinkError(f"{self.uri}: cannot write {name}", "check free space and permissions")


class JsonlSink(Sink):
    """One JSON object per line and frame (line-buffered, so ``tail -f`` works).

    Line: ``{"index", "time" (unix s), "t_capture" (monotonic s), "latency_ms", "file" (image
    sources only: the image's name), "detections":
    {"boxes": [[x1, y1, x2, y2] px], "scores", "class_ids", "classes", "landmarks": [[[x, y]…]] | null}}``.
    """

    annotated = False

    def __init__(self, uri: str, path: str) -> None:
        super().__init__(uri)
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
            self._fh: Optional[Any] = open(path, "w", encoding="utf-8", buffering=1)
        except OSError as err:
            raise SinkError(f"{uri}: cannot open {path} for writing: {err.strerror}") from err
        self.path = path
        self._names = np.array([], dtype=object)

    def start(self, info: StreamInfo) -> None:
        super().start(info)
        self._names = np.array(list(info.class_names), dtype=object)

    def _class_names(self, ids: np.ndarray) -> List[Any]:
        table = self._names
        if ids.size and int(ids.max()) >= table.size:  # ids past the list: named by number
            extra = [str(i) for i in range(table.size, int(ids.max()) + 1)]
            table = np.concatenate([table, np.array(extra, dtype=object)])
        return list(table[ids].tolist()) if ids.size else []

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        if self._fh is None:
            raise SinkError(f"{self.uri}: write after close")
        ids = np.asarray(detections.class_ids, np.int64).reshape(-1)
        lms = detections.landmarks
        record = {
            "index": int(frame.index),
            "time": round(time.time(), 6),
            "t_capture": round(float(frame.t_capture), 6),
            "latency_ms": stats.get("latency_ms"),
            **({"file": frame.name} if frame.name is not None else {}),
            "detections": {
                "boxes": np.round(np.asarray(detections.boxes, np.float64), 2).tolist(),
                "scores": np.round(np.asarray(detections.scores, np.float64), 4).tolist(),
                "class_ids": ids.tolist(),
                "classes": self._class_names(ids),
                "landmarks": None if lms is None else np.round(np.asarray(lms, np.float64), 2).tolist(),
            },
        }
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class MjpegSink(Sink):
    """Serve annotated frames over HTTP (see :class:`edgeagent.mjpeg.MjpegServer`).

    Args:
        uri: the URI.
        host: interface (``""``: all).
        port: TCP port (0: a free one; see :attr:`port` and :attr:`url`).
        quality: JPEG quality 1-100.
    """

    def __init__(self, uri: str, host: str = "", port: int = 8080, quality: int = 80) -> None:
        super().__init__(uri)
        try:
            self.server = MjpegServer(host, port, quality)
        except OSError as err:
            raise SinkError(
                f"{uri}: cannot listen on {host or '0.0.0.0'}:{port}: {err.strerror or err}",
                "pick another port (mjpeg://:8081) or stop the program using it",
            ) from err
        self.port, self.url = self.server.port, self.server.url

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        self.server.publish(frame.image_bgr, stats)

    def close(self) -> None:
        self.server.close()


def _host_port(uri: str, netloc: str) -> Tuple[str, int]:
    host, sep, port = netloc.rpartition(":")
    if not sep:
        host, port = netloc, "8080"
    if not port.isdigit() or int(port) > 65535:
        raise SinkError(f"{uri}: bad port {port!r}; write mjpeg://:8080 or mjpeg://0.0.0.0:8080")
    return host.strip("[]"), int(port)


def _classify(uri: str) -> Tuple[str, str]:
    """(kind, location) for a sink URI; kind in display, mjpeg, jsonl, dir, video."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    location = unquote(parts.netloc + parts.path) if scheme else uri
    if scheme in ("display", "mjpeg", "jsonl", "dir"):
        return scheme, (parts.netloc if scheme == "mjpeg" else location)
    if scheme not in ("", "file") and len(scheme) > 1:
        raise SinkError(f"{uri}: unknown sink scheme {scheme!r}; use {FORMS}")
    ext = os.path.splitext(location)[1].lower()
    if ext == ".jsonl":
        return "jsonl", location
    if location.endswith(("/", os.sep)) or os.path.isdir(location):
        return "dir", location
    if ext in VIDEO_FOURCC:
        return "video", location
    raise SinkError(f"{uri}: cannot tell what kind of sink this is; use {FORMS}")


_FACTORIES: Dict[str, Callable[..., Sink]] = {
    "display": lambda uri, loc, **o: DisplaySink(uri, **o),
    "mjpeg": lambda uri, loc, **o: MjpegSink(uri, *_host_port(uri, loc), **o),
    "jsonl": lambda uri, loc, **o: JsonlSink(uri, loc, **o),
    "dir": lambda uri, loc, **o: ImageDirSink(uri, loc, **o),
    "video": lambda uri, loc, **o: VideoFileSink(uri, loc, **o),
}


_OPTIONS = {
    "display": {"title"},
    "mjpeg": {"quality"},
    "jsonl": set(),
    "dir": {"ext", "quality"},
    "video": {"fourcc", "fps"},
}


def open_sink(uri: str, **opts: Any) -> Sink:
    """Open a sink from a URI or path.

    Args:
        uri: see the module docstring for the forms.
        **opts: sink options: ``title`` (display); ``fourcc``, ``fps`` (video); ``quality`` (mjpeg, dir);
            ``ext`` (dir).

    Returns:
        The sink, ready for :meth:`Sink.start`.

    Raises:
        SinkError: an unknown form, an unknown option, no display, a busy port, an unwritable path.
    """
    kind, location = _classify(str(uri).strip())
    if not location and kind in ("jsonl", "dir", "video"):
        raise SinkError(f"{uri}: missing the path; e.g. {kind}://out")
    unknown = sorted(set(opts) - _OPTIONS[kind])
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[kind])) or "none"
        raise SinkError(
            f"{uri}: unknown option(s) {', '.join(unknown)} for a {kind} sink (allowed: {allowed})"
        )
    return _FACTORIES[kind](uri, location, **opts)
