"""`edgesdk run RECIPE --device D --source URI`: camera inference on the device, stats on the host."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.text import Text

from edgesdk import settings
from edgesdk.cli._console import err_console, live_line, print_json
from edgesdk.cli._params import AcceptNewOpt, DeviceOpt, JsonOpt
from edgesdk.deploy.camera import run_on_device
from edgesdk.deploy.inventory import resolve_device

app = typer.Typer()

SourceOpt = Annotated[
    str,
    typer.Option("--source", "-s", help="csi://0, v4l2:///dev/video0, rtsp://…, a video, an image, a folder"),
]
SinkOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--sink",
        help="on the device: display://, out.mp4, mjpeg://:8080, det.jsonl, dir://frames/ (repeatable)",
    ),
]
DurationOpt = Annotated[Optional[float], typer.Option("--duration", help="stop after this many seconds")]
FramesOpt = Annotated[Optional[int], typer.Option("--frames", help="stop after this many frames")]
WidthOpt = Annotated[
    Optional[int],
    typer.Option("--width", help="camera capture width (csi, v4l2); files, images: resize to it"),
]
HeightOpt = Annotated[
    Optional[int],
    typer.Option("--height", help="camera capture height (csi, v4l2); files, images: resize to it"),
]
FpsOpt = Annotated[
    Optional[float],
    typer.Option("--fps", help="camera frame rate (csi, v4l2); a video file: play at this rate"),
]
FlipOpt = Annotated[Optional[str], typer.Option("--flip", help="csi: none, rotate-180, horizontal, … or 0-7")]
CodecOpt = Annotated[Optional[str], typer.Option("--codec", help="v4l2: raw|mjpeg; rtsp: h264|h265")]
LoopOpt = Annotated[
    Optional[int],
    typer.Option("--loop", min=-1, help="video files and images: play them N more times (-1: until Ctrl-C)"),
]
ConfOpt = Annotated[
    Optional[float],
    typer.Option(
        "--conf", min=0.0, max=1.0, help="score threshold instead of the recipe's (0.001 to score with eval)"
    ),
]
MaxDetOpt = Annotated[
    Optional[int],
    typer.Option("--max-det", min=1, help="detections per frame at most, instead of the recipe's"),
]
ViewOpt = Annotated[
    bool, typer.Option("--view", help="stream the annotated video to a browser on this machine")
]


def stats_line(data: dict[str, Any]) -> Text:
    """One status line from a pipeline ``stats`` event."""
    stage_ms = data.get("stage_ms") or {}
    # fits 80 columns: short stage names, the (near-zero) sink stage only when it costs something
    stages = " ".join(
        f"{_SHORT.get(k, k)} {v:.1f}"
        for k, v in stage_ms.items()
        if v is not None and (k != "sink" or v >= 0.5)
    )
    dropped = data.get("dropped") or 0
    return Text.from_markup(
        f"[bold]{data.get('fps') or 0:.1f} FPS[/bold]  {data.get('frames_out', 0)} frames  "
        + (f"{dropped} dropped  " if dropped else "")
        + f"[dim]{stages} ms[/dim]"
    )


_SHORT = {"capture": "cap", "preprocess": "pre", "postprocess": "post"}


@app.command("run")
def run_cmd(
    recipe: Annotated[str, typer.Argument(help="a deployed recipe")],
    source: SourceOpt,
    device: DeviceOpt = None,
    sink: SinkOpt = None,
    duration: DurationOpt = None,
    frames: FramesOpt = None,
    view: ViewOpt = False,
    width: WidthOpt = None,
    height: HeightOpt = None,
    fps: FpsOpt = None,
    flip: FlipOpt = None,
    codec: CodecOpt = None,
    loop: LoopOpt = None,
    conf: ConfOpt = None,
    max_det: MaxDetOpt = None,
    accept_new: AcceptNewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a deployed recipe on a camera or video ON the device; FPS and per-stage ms stream here.

    To score the device's own detections: run on a labelled images folder with `--conf 0.001
    --max-det 300 --sink dets.jsonl`, then `edgesdk eval RECIPE --data DIR --detections dets.jsonl`.
    """
    target = resolve_device(device or "local")
    with live_line(as_json) as live:

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "stats":
                live.update(stats_line(data))
            elif kind == "sink" and data.get("view_url"):
                err_console.print(f"[green]view:[/green] open [bold]{data['view_url']}[/bold] in a browser")
            elif kind == "source":
                err_console.print(f"[yellow]source:[/yellow] {data.get('message')}")

        result = run_on_device(
            target, recipe, settings.work_dir(), source=source, sinks=sink or [], frames=frames, duration=duration,
            view=view, accept_new=accept_new, on_event=on_event, conf=conf, max_det=max_det,
            camera={"width": width, "height": height, "fps": fps, "flip": flip, "codec": codec, "loop": loop},
        )  # fmt: skip
    summary = result.summary
    if as_json:
        print_json(summary)
        return
    err_console.print(
        f"[green]done[/green] ({summary.get('stop_reason')}): {summary.get('frames_out')} frames, "
        f"{summary.get('fps') or 0:.1f} FPS, {summary.get('dropped')} dropped"
    )
    if view and summary.get("stop_reason") == "end" and loop is None:
        err_console.print("[dim]hint:[/dim] the source ended: `--loop -1` replays a file until Ctrl-C")
    where = "" if target.is_local else f" on {target.name}"
    for path in summary.get("outputs") or []:
        err_console.print(f"wrote {path}{where}", markup=False, highlight=False)
