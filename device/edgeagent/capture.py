"""Source classes behind :func:`edgeagent.sources.open_source`: frames, events, reconnect policy.

:class:`CaptureSource` wraps ``cv2.VideoCapture`` (cameras, streams, video files) with bounded
exponential-backoff reconnects, file-change detection and looping; :class:`ImageSource` reads a
single image or a folder. Neither ever crashes on a dropped source: incidents go to the
``on_event`` callback as :class:`SourceEvent` objects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from edgeagent.events import AgentError, BadInput, MissingDependency

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


class SourceError(BadInput):
    """A source URI is malformed, names nothing, or cannot be opened."""

    kind = "SourceError"


class GStreamerUnavailable(MissingDependency):
    """The URI needs GStreamer and this OpenCV was built without it (pip wheels are)."""

    kind = "GStreamerUnavailable"


class SourceLost(AgentError):
    """A source dropped and did not come back within the reconnect budget (``give_up="raise"``)."""

    kind = "SourceLost"


class Frame(NamedTuple):
    """One captured frame.

    Attributes:
        index: 0-based frame number in capture order (keeps counting across reconnects/loops).
        image_bgr: (H, W, 3) uint8 BGR image as OpenCV returns it.
        t_capture: ``time.monotonic()`` seconds when the read returned.
        name: the image file's name for image sources (what ``edgesdk eval --detections``
            matches to labels), None for video and cameras.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: frame.index is the number
    image_bgr: np.ndarray
    t_capture: float
    name: Optional[str] = None


class SourceEvent(NamedTuple):
    """Something a user should know about a source that is not a crash.

    Attributes:
        kind: ``lost``, ``retry``, ``reconnected``, ``gave_up``, ``removed`` (a file deleted while
            open), ``short`` (a file ended before its header's frame count) or ``skipped``
            (an unreadable image).
        uri: the source URI.
        message: one human line.
        attempt: reconnect attempt number (1-based; 0 when not a retry).
        delay_s: seconds waited before this attempt.
    """

    kind: str
    uri: str
    message: str
    attempt: int = 0
    delay_s: float = 0.0


class Reconnect(NamedTuple):
    """Exponential backoff: attempt k waits ``min(max_s, initial_s * factor**(k-1))`` seconds.

    Attributes:
        retries: attempts before giving up (0: give up at once).
        initial_s: first wait in seconds.
        max_s: longest wait in seconds.
        factor: growth per attempt.
    """

    retries: int = 8
    initial_s: float = 0.5
    max_s: float = 8.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before 1-based ``attempt``."""
        return float(min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1)))


EventCallback = Callable[[SourceEvent], None]


def _log_event(event: SourceEvent) -> None:
    level = logging.INFO if event.kind == "reconnected" else logging.WARNING
    log.log(level, "%s: %s", event.uri, event.message)


class Source:
    """Iterate frames: ``for frame in source: ...``; :meth:`stop` is safe from any thread.

    Attributes:
        uri: the URI it was opened from.
        live: True for cameras and network streams (the pipeline drops the oldest frame when it
            falls behind); False for files and images (nothing is dropped).
        fps: nominal frames per second, or None when unknown.
        frame_count: frames in one pass of a file, or None (live, unknown).
    """

    def __init__(self, uri: str, live: bool, on_event: Optional[EventCallback] = None) -> None:
        self.uri = uri
        self.live = live
        self.fps: Optional[float] = None
        self.frame_count: Optional[int] = None
        self._on_event = on_event or _log_event
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the iteration to end at the next frame or backoff wait (thread-safe)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Release the device or file. Call from the iterating thread or after iteration ended."""
        self.stop()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(self, kind: str, message: str, attempt: int = 0, delay_s: float = 0.0) -> None:
        self._on_event(SourceEvent(kind, self.uri, message, attempt, delay_s))


Opener = Callable[[], "cv2.VideoCapture"]
FrameOp = Callable[[np.ndarray], np.ndarray]


class CaptureSource(Source):
    """A ``cv2.VideoCapture`` source (camera, stream or video file) with reconnect and loop.

    Args:
        uri: the URI (for messages).
        opener: returns a new ``cv2.VideoCapture`` (called again on every reconnect).
        live: camera/stream (True) or file (False).
        path: the file's path (files only): its disappearance or change is detected.
        reconnect: backoff settings for live drops and changed files.
        give_up: ``"end"`` (iteration stops) or ``"raise"`` (:class:`SourceLost`) when retries run out.
        loop: extra passes over a file (-1: forever).
        pace_fps: files only: read at most this many frames per second (simulates a camera).
        frame_op: applied to every image (flip/resize the capture could not do), or None.
        on_event: receives :class:`SourceEvent` objects (default: the module logger).
    """

    def __init__(
        self,
        uri: str,
        opener: Opener,
        *,
        live: bool,
        path: Optional[str] = None,
        reconnect: Reconnect = Reconnect(),
        give_up: str = "end",
        loop: int = 0,
        pace_fps: Optional[float] = None,
        frame_op: Optional[FrameOp] = None,
        on_event: Optional[EventCallback] = None,
    ) -> None:
        super().__init__(uri, live, on_event)
        if give_up not in ("end", "raise"):
            raise SourceError(f"give_up must be 'end' or 'raise', got {give_up!r}")
        self._opener, self._path, self._reconnect = opener, path, reconnect
        self._give_up, self._loops_left, self._frame_op = give_up, loop, frame_op
        self._period = 1.0 / pace_fps if pace_fps else 0.0
        self._cap: Optional[cv2.VideoCapture] = None
        self._stamp = _file_stamp(path) if path else None
        self._removed_reported = False
        self._pos = 0
        self._open_or_raise()

    def _open_or_raise(self) -> None:
        cap = self._opener()
        if cap is None or not cap.isOpened():
            what = "file" if self._path else "device or stream"
            raise SourceError(
                f"cannot open source {self.uri}",
                f"check that the {what} exists and is readable (and not in use by another program)",
            )
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else None
        if self._path:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        index, next_t = 0, time.monotonic()
        self._pos = 0  # frames read in the current pass over a file (where a reopen seeks to)
        try:
            while not self._stop.is_set():
                if self._period:
                    next_t += self._period
                    self._stop.wait(max(0.0, next_t - time.monotonic()))
                ok, image = self._cap.read() if self._cap is not None else (False, None)
                if ok and image is not None:
                    if self._frame_op is not None:
                        image = self._frame_op(image)
                    yield Frame(index, image, time.monotonic())
                    index, self._pos = index + 1, self._pos + 1
                    if self._path and not self._removed_reported:
                        self._check_removed()
                elif not self._recover(index):
                    return
        finally:
            self._release()

    def _check_removed(self) -> None:
        if not os.path.exists(str(self._path)):
            self._removed_reported = True
            self._emit("removed", "the file was removed; reading on from the copy that is still open")

    def _recover(self, index: int) -> bool:
        """After a failed read: loop, end, or reconnect. True when frames can be read again."""
        if self._path is not None:
            whole = self.frame_count is not None and self._pos >= self.frame_count
            if whole or self._stamp == _file_stamp(self._path):
                if not whole and self.frame_count is not None:
                    self._emit("short", f"the file ended after {self._pos} of {self.frame_count} frames")
                if self._loops_left == 0:
                    return False
                self._loops_left -= 1 if self._loops_left > 0 else 0
                self._pos = 0
                return self._reopen_at(0)
        what = "stream dropped" if self.live else "the file changed or disappeared"
        self._emit("lost", f"{what} after frame {index}; reconnecting")
        for attempt in range(1, self._reconnect.retries + 1):
            delay = self._reconnect.delay(attempt)
            self._emit(
                "retry", f"attempt {attempt}/{self._reconnect.retries} in {delay:.1f} s", attempt, delay
            )
            if self._stop.wait(delay):
                return False
            if self._reopen_at(None if self.live else self._pos):
                self._emit("reconnected", f"reconnected after {attempt} attempt(s)", attempt)
                return True
        message = f"gave up after {self._reconnect.retries} reconnect attempt(s)"
        self._emit("gave_up", message, self._reconnect.retries)
        if self._give_up == "raise":
            raise SourceLost(f"source {self.uri}: {message}", "check the camera/stream/file and run again")
        return False

    def _reopen_at(self, index: Optional[int]) -> bool:
        self._release()
        if self._path is not None and not os.path.exists(self._path):
            return False
        try:
            cap = self._opener()
        except cv2.error:
            return False
        if cap is None or not cap.isOpened():
            return False
        if index:
            cap.set(cv2.CAP_PROP_POS_FRAMES, float(index))
        self._cap = cap
        if self._path is not None:
            self._stamp = _file_stamp(self._path)
        return True

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def close(self) -> None:
        super().close()
        self._release()


def _file_stamp(path: Optional[str]) -> Optional[Tuple[int, int, int]]:
    """(inode, size, mtime ns) of ``path``, or None when it does not exist."""
    try:
        st = os.stat(str(path))
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ImageSource(Source):
    """A single image or a sorted folder of images; unreadable files are reported and skipped.

    Args:
        uri: the URI (for messages).
        paths: image files in order.
        loop: extra passes (-1: forever).
        frame_op: applied to every image, or None.
        on_event: receives ``skipped`` events.
    """

    def __init__(
        self,
        uri: str,
        paths: List[str],
        *,
        loop: int = 0,
        frame_op: Optional[FrameOp] = None,
        on_event: Optional[EventCallback] = None,
    ) -> None:
        super().__init__(uri, False, on_event)
        if not paths:
            raise SourceError(f"source {uri}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
        self.paths, self._loop, self._frame_op = paths, loop, frame_op
        self.frame_count = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        index, passes = 0, 0
        while not self._stop.is_set():
            for path in self.paths:
                if self._stop.is_set():
                    return
                image = cv2.imread(path, cv2.IMREAD_COLOR)
                if image is None:
                    self._emit("skipped", f"cannot read image {path}; skipped")
                    continue
                if self._frame_op is not None:
                    image = self._frame_op(image)
                yield Frame(index, image, time.monotonic(), os.path.basename(path))
                index += 1
            passes += 1
            if self._loop >= 0 and passes > self._loop:
                return
