"""Benchmark: end-to-end pipeline FPS vs inference-only FPS (onnxruntime, backend defaults).

For each model, :func:`edgeagent.bench.bench` warms the engine up, times it alone on a fixed
pre-processed input (like trtexec), then runs the overlapped pipeline (capture -> preprocess ->
infer -> decode -> sink) on the first ``--frames`` frames of a real video, in the same run, with
the ort backend's default settings (``--spin``: onnxruntime's own spinning threads instead). The
ratio ``e2e_fps / infer_fps`` says how well capture, pre- and post-processing hide behind inference
(goal on a 2-core CPU: >= 0.9). ``--repeat`` runs everything several times (the machine may be
shared) and prints every run plus the median ratio. On a machine shared with other jobs the
background load changes within seconds; ``--rounds R`` then splits each run into R alternating
(engine alone, pipeline) pairs of ``--frames`` each and sums them, so both halves of the ratio
see the same load. The last column, ``other CPU %``, is the largest share of the CPUs that other
processes used in any round (the report's ``background_cpu``). Not collected by pytest (not
``test_*.py``).

Usage::

    python tests/benchmarks/bench_pipeline.py [--shared DIR] [--frames 300] [--repeat 3] [--rounds 1]
        [--video one-by-one-person-detection.mp4] [--sink jsonl:///tmp/dets.jsonl] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Optional

import onnxruntime

from edgeagent.backends.ort import OrtBackend
from edgeagent.bench import bench
from edgeagent.sinks import open_sink
from edgeagent.sources import open_source
from edgesdk import settings
from edgesdk.recipe import load_recipe

MODELS = ("yolov5n", "retinaface-mnet")
STAGES = ("capture", "preprocess", "infer", "postprocess", "sink", "e2e")


def _one(
    name: str, shared: Path, video: Path, frames: int, sinks: list[str], rounds: int, spin: bool
) -> dict[str, Any]:
    recipe = load_recipe(name).resolved()
    backend = OrtBackend(str(shared / "models" / recipe["model"]["path"]), spin=spin)
    parts = []
    with backend:
        for _ in range(rounds):
            parts.append(
                bench(
                    backend,
                    recipe,
                    open_source(str(video)),
                    warmup=10,
                    frames=frames,
                    infer_iterations=frames,
                    sinks=[open_sink(uri) for uri in sinks],
                    versions={"onnxruntime": onnxruntime.__version__, "python": platform.python_version()},
                )
            )
    return parts[0] if rounds == 1 else _combine(parts)


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum alternating rounds: FPS = all frames / all seconds; stage means weighted by frame count."""
    out = dict(parts[0])
    n_inf = sum(p["settings"]["infer_iterations"] for p in parts)
    out["infer_fps"] = n_inf / sum(p["wall_s"]["infer_only"] for p in parts)
    out["frames"] = sum(p["frames"] for p in parts)
    out["e2e_fps"] = out["frames"] / sum(p["wall_s"]["e2e"] for p in parts)
    out["e2e_over_infer"] = out["e2e_fps"] / out["infer_fps"]
    out["latency_ms"] = {}
    for stage in parts[0]["latency_ms"]:
        counts = [p["latency_ms"][stage]["count"] for p in parts]
        mean = sum(c * p["latency_ms"][stage]["mean"] for c, p in zip(counts, parts)) / sum(counts)
        out["latency_ms"][stage] = {"mean": mean, "count": sum(counts)}
    out["rounds"] = [p["e2e_over_infer"] for p in parts]
    shares = [(p.get("background_cpu") or {}).get("share") for p in parts]
    out["background_cpu"] = {"share": max(shares)} if None not in shares else None
    return out


def _row(r: dict[str, Any]) -> str:
    ms = r["latency_ms"]
    share = (r.get("background_cpu") or {}).get("share")
    other = "–" if share is None else f"{100 * share:.0f}"
    stages = " | ".join(f"{ms[s]['mean']:.1f}" for s in STAGES)
    return (
        f"| {r['model']} | {r['frames']} | {r['infer_fps']:.1f} | {r['e2e_fps']:.1f} | "
        f"{r['e2e_over_infer']:.3f} | {ms['infer_only']['mean']:.1f} | {stages} | {other} |"
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=settings.test_data(), help="folder with models/ and data/"
    )
    parser.add_argument("--video", default="one-by-one-person-detection.mp4", help="file in data/videos/")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="alternating (engine, pipeline) pairs per run")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sink", action="append", default=[], help="sink URI for the e2e part (repeatable)")
    parser.add_argument(
        "--spin",
        action="store_true",
        help="onnxruntime's own default (idle intra-op threads busy-wait) instead of the backend's (they sleep)",
    )
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    video = args.shared / "data" / "videos" / args.video
    reports = []
    for rep in range(args.repeat):
        for name in args.models.split(","):
            sys.stderr.write(f"run {rep + 1}/{args.repeat}: {name} ...\n")
            reports.append(_one(name, args.shared, video, args.frames, args.sink, args.rounds, args.spin))
    if args.json:
        print(json.dumps(reports, indent=1))
        return 0
    head = " | ".join(f"{s} ms" for s in STAGES)
    print(f"| model | frames | infer-only FPS | e2e FPS | e2e/infer | infer-only ms | {head} | other CPU % |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * (len(STAGES) + 1))
    for r in reports:
        print(_row(r))
    print()
    for name in args.models.split(","):
        ratios = [r["e2e_over_infer"] for r in reports if r["model"] == name]
        print(f"{name}: median e2e/infer over {len(ratios)} run(s) = {statistics.median(ratios):.3f}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"\nonnxruntime {onnxruntime.__version__} CPU (the ort backend's defaults"
        f"{', but spinning threads' if args.spin else ''}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, video {args.video}, first {args.frames} frames "
        f"x {args.rounds} round(s), "
        f"queue_size 2, no sinks unless --sink; load average at the end {load}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
