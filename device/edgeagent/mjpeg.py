"""A small MJPEG-over-HTTP server (standard library only) for watching the annotated stream.

Routes:

- ``/``: an HTML page showing the stream (``<img src="/stream">``) and live stats polled from
  ``/stats`` once a second.
- ``/stream``: ``multipart/x-mixed-replace`` JPEG frames (works in ``<img>``, VLC, ffplay, OpenCV).
- ``/snapshot.jpg``: the latest frame as one JPEG (503 until the first frame).
- ``/stats``: the latest stats as JSON.

Frames are JPEG-encoded lazily, once per new frame, by the first client thread that needs it:
with nobody watching, publishing a frame costs one reference assignment.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Mapping, Optional, Tuple

import cv2
import numpy as np

log = logging.getLogger(__name__)

BOUNDARY = "frame"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edgeagent live</title>
<style>
body{margin:0;background:#111;color:#ddd;font:14px/1.4 system-ui,sans-serif;display:flex;flex-wrap:wrap}
#view{flex:1 1 640px;padding:12px}#view img{max-width:100%;border:1px solid #333}
#side{flex:0 0 260px;padding:12px}h1{font-size:16px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}td{padding:2px 6px;border-bottom:1px solid #2a2a2a}
td.v{text-align:right;font-variant-numeric:tabular-nums}#fps{font-size:32px;color:#6f6}
</style></head><body>
<div id="view"><img id="stream" src="/stream" alt="live stream"></div>
<div id="side"><h1>edgeagent live</h1><div><span id="fps">-</span> FPS</div>
<table id="stats"></table><p><a href="/snapshot.jpg" style="color:#8cf">snapshot</a></p></div>
<script>
function row(k,v){return "<tr><td>"+k+"</td><td class=v>"+v+"</td></tr>";}
function fmt(x){return (typeof x==="number")?(Number.isInteger(x)?x:x.toFixed(1)):x;}
async function poll(){
  try{
    const s=await (await fetch("/stats",{cache:"no-store"})).json();
    document.getElementById("fps").textContent=s.fps==null?"-":s.fps.toFixed(1);
    let h="";
    const names={frames_out:"frames",dropped:"dropped",detections:"detections",latency_ms:"latency ms"};
    for(const [k,label] of Object.entries(names)){if(k in s&&s[k]!=null)h+=row(label,fmt(s[k]));}
    for(const [k,v] of Object.entries(s.stage_ms||{})){h+=row(k+" ms",fmt(v));}
    document.getElementById("stats").innerHTML=h;
  }catch(e){}
  setTimeout(poll,1000);
}
poll();
</script></body></html>
"""


class _Latest:
    """The newest frame and stats, shared between the publisher and the client threads."""

    def __init__(self, quality: int) -> None:
        self.cond = threading.Condition()
        self.quality = int(quality)
        self.image: Optional[np.ndarray] = None
        self.version = 0
        self.jpeg: Tuple[int, bytes] = (0, b"")
        self.stats: Dict[str, Any] = {}
        self.closed = False
        self.clients = 0

    def publish(self, image: np.ndarray, stats: Mapping[str, Any]) -> None:
        with self.cond:
            self.image, self.stats = image, dict(stats)
            self.version += 1
            self.cond.notify_all()

    def next_jpeg(self, seen: int, timeout: float) -> Optional[Tuple[int, bytes]]:
        """The JPEG of a frame newer than version ``seen``, or None after ``timeout`` s / when closed."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.closed or self.version > seen, timeout) or self.closed:
                return None
            version, image = self.version, self.image
            if self.jpeg[0] == version or image is None:
                return self.jpeg if image is not None else None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return None
        encoded = (version, buf.tobytes())
        with self.cond:
            if self.jpeg[0] < version:
                self.jpeg = encoded
        return encoded


def _handler(latest: _Latest) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgeagent-mjpeg"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            route = {
                "/": self._page,
                "/index.html": self._page,
                "/stream": self._stream,
                "/stats": self._stats,
                "/snapshot.jpg": self._snapshot,
            }.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404, "try / (page), /stream, /snapshot.jpg or /stats")
                return
            try:
                route()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away

        def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _page(self) -> None:
            self._send(PAGE.encode("utf-8"), "text/html; charset=utf-8")

        def _stats(self) -> None:
            with latest.cond:
                stats = dict(latest.stats, clients=latest.clients)
            self._send(json.dumps(stats, default=float).encode("utf-8"), "application/json")

        def _snapshot(self) -> None:
            item = latest.next_jpeg(0, 0.0)
            if item is None:
                self._send(b"no frame yet\n", "text/plain", 503)
            else:
                self._send(item[1], "image/jpeg")

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with latest.cond:
                latest.clients += 1
            try:
                seen = 0
                while not latest.closed:
                    item = latest.next_jpeg(seen, 1.0)
                    if item is None:
                        continue
                    seen, data = item
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                    self.wfile.write(head.encode("ascii") + data + b"\r\n")
                    self.wfile.flush()
            finally:
                with latest.cond:
                    latest.clients -= 1

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
            log.debug("mjpeg %s: " + format, self.client_address[0], *args)

    return Handler


class MjpegServer:
    """Serve the newest published frame as MJPEG over HTTP, in a background thread.

    Args:
        host: interface to bind (``""`` or ``0.0.0.0``: all; ``127.0.0.1``: this machine only).
        port: TCP port (0: any free port; read the actual one from :attr:`port`).
        quality: JPEG quality 1-100.

    Raises:
        OSError: the port is taken or the address is invalid (the caller turns it into a message).
    """

    def __init__(self, host: str = "", port: int = 8080, quality: int = 80) -> None:
        self._latest = _Latest(quality)
        self._server = ThreadingHTTPServer((host, int(port)), _handler(self._latest))
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="mjpeg-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port/`` (``127.0.0.1`` when bound to all interfaces)."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}/"

    @property
    def clients(self) -> int:
        """Open ``/stream`` connections."""
        return self._latest.clients

    def publish(self, image_bgr: np.ndarray, stats: Mapping[str, Any]) -> None:
        """Make ``image_bgr`` (not copied: do not modify it afterwards) the frame clients get next."""
        self._latest.publish(image_bgr, stats)

    def close(self) -> None:
        """Stop serving; open streams end within about a second."""
        with self._latest.cond:
            self._latest.closed = True
            self._latest.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)
