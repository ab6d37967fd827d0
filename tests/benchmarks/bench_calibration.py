"""Benchmark: edgesdk entropy calibration vs onnxruntime.quantization's EntropyCalibrater.

For yolox-nano (COCO val, 64 images) and retinaface-mnet (the first 64 WIDER FACE images,
sorted by name), on the same pre-processed images (the recipe's pre-processing) and the
same exported model (wall time, and CPU time of the process, all threads: the CPU column is
the fairer one on a shared machine). The image files are read once before anything is timed
(both sides then read them from the page cache); edgesdk runs ``--repeat`` times (default 3)
and its median run counts (the slowest is reported too), onnxruntime runs once (minutes):

- **edgesdk**: :func:`edgesdk.quant.stats.collect_stats` (two onnxruntime passes with the
  statistics computed in the graph, two images at once: min/max/sum reductions, then int16 bin
  indices of the 2048x8-bin |x| histograms, counted on the host) + the vectorised entropy
  search for every tensor; and again with ``passes=1`` (``--single-pass``: one onnxruntime
  pass with every tensor copied out, growing histograms re-binned), whose thresholds are
  compared with the two-pass ones. The "infer" column sums the onnxruntime time of the runs
  in flight, so it can exceed the wall time.
- **onnxruntime**: ``create_calibrator(..., CalibrationMethod.Entropy,
  extra_options={"num_bins": 2048, "num_quantized_bins": 128})``; its ``collect_data`` is fed
  8 images at a time (it keeps every activation of a call in memory before histogramming:
  64 images at once would hold ~8 GB), then ``compute_data()``.

Then the thresholds of the tensors both calibrated are compared as ``T_ort / T_edgesdk``
(onnxruntime's threshold is ``max(|lo|, |hi|)`` of the range it returns). Prints Markdown
tables on stdout (progress on stderr); writes no file. Not collected by pytest.

Usage::

    python tests/benchmarks/bench_calibration.py [--shared DIR] [--images 64] [--models yolox-nano,retinaface-mnet]
        [--skip-ort] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from edgesdk import settings
from edgesdk.export import export_recipe
from edgesdk.graph.io import save_model
from edgesdk.quant.calibrators import entropy_threshold
from edgesdk.quant.histogram import coarse
from edgesdk.quant.stats import ImageBatches, collect_stats
from edgesdk.recipe import Recipe, load_recipe

DATA = {"yolox-nano": "coco_val2017_first128", "retinaface-mnet": "widerface_val200_416"}
ORT_CHUNK = 8


def _images(shared: Path, model: str, count: int) -> list[Path]:
    folder = shared / "data" / DATA.get(model, "coco_val2017_first128") / "images"
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))[:count]


def _edgesdk(model: Any, recipe: Recipe, images: list[Path], passes: int = 2) -> dict[str, Any]:
    cpu = time.process_time()
    started = time.perf_counter()
    batches = ImageBatches(images, recipe)
    stats = collect_stats(model, batches, input_name=model.graph.input[0].name, passes=passes)
    collected = time.perf_counter()
    thresholds = {
        name: entropy_threshold(coarse(s.hist), s.amax)[0]
        for name, s in stats.tensors.items()
        if s.hist is not None
    }
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "cpu_seconds": time.process_time() - cpu,
        "seconds_infer": stats.seconds_infer,
        "seconds_stats": stats.seconds_stats,
        "seconds_search": done - collected,
        "thresholds": thresholds,
    }


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def _onnxruntime(model: Any, recipe: Recipe, images: list[Path]) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    input_name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(model, Path(tmp) / "model.onnx")
        cpu = time.process_time()
        started = time.perf_counter()
        quiet = contextlib.redirect_stdout(sys.stderr)  # onnxruntime prints progress on stdout
        quiet.__enter__()
        calibrator = create_calibrator(
            path,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Entropy,
            extra_options={"num_bins": 2048, "num_quantized_bins": 128},
        )
        batches = [{input_name: b} for b in ImageBatches(images, recipe)]
        for start in range(0, len(batches), ORT_CHUNK):
            calibrator.collect_data(_Reader(batches[start : start + ORT_CHUNK]))
            sys.stderr.write(f"\r  onnxruntime collect {min(start + ORT_CHUNK, len(batches))}/{len(batches)}")
        collected = time.perf_counter()
        sys.stderr.write("\n  onnxruntime entropy search ...\n")
        ranges = calibrator.compute_data()
        done = time.perf_counter()
        cpu = time.process_time() - cpu
        quiet.__exit__(None, None, None)
    thresholds = {
        name: float(max(abs(float(r.range_value[0])), abs(float(r.range_value[1]))))
        for name, r in ranges.data.items()
    }
    return {
        "seconds": done - started,
        "cpu_seconds": cpu,
        "seconds_collect": collected - started,
        "seconds_search": done - collected,
        "thresholds": thresholds,
    }


def _compare(ours: dict[str, float], theirs: dict[str, float]) -> dict[str, Any]:
    common = [n for n in ours if n in theirs and ours[n] > 0]
    ratio = np.array([theirs[n] / ours[n] for n in common])
    rel = np.abs(ratio - 1.0)
    return {
        "common": len(common),
        "only_edgesdk": len([n for n in ours if n not in theirs]),
        "only_onnxruntime": len([n for n in theirs if n not in ours]),
        "median_ratio": float(np.median(ratio)),
        "p10_ratio": float(np.percentile(ratio, 10)),
        "p90_ratio": float(np.percentile(ratio, 90)),
        "within_5pct": float(np.mean(rel <= 0.05)),
        "median_rel_diff": float(np.median(rel)),
        "max_rel_diff": float(rel.max()),
    }


def _median_run(model: Any, recipe: Recipe, images: list[Path], repeat: int) -> dict[str, Any]:
    """``repeat`` edgesdk runs; the one with the median wall time, with every run's wall time."""
    runs = sorted(
        (_edgesdk(model, recipe, images) for _ in range(max(1, repeat))), key=lambda r: r["seconds"]
    )
    ours = runs[len(runs) // 2]
    ours["seconds_runs"] = [r["seconds"] for r in runs]
    return ours


def run(shared: Path, models: list[str], count: int, skip_ort: bool, repeat: int = 3) -> list[dict[str, Any]]:
    rows = []
    for name in models:
        recipe = load_recipe(name)
        model = export_recipe(recipe, model_dir=shared / "models", check_parity=False).model
        images = _images(shared, name, count)
        for path in images:  # both sides then read the files from the page cache
            path.read_bytes()
        sys.stderr.write(f"{name}: edgesdk on {len(images)} images, {repeat} run(s)\n")
        ours = _median_run(model, recipe, images, repeat)
        sys.stderr.write(f"{name}: edgesdk --single-pass on {len(images)} images\n")
        single = _edgesdk(model, recipe, images, passes=1)
        single["vs_exact"] = _compare(ours["thresholds"], single["thresholds"])
        row: dict[str, Any] = {
            "model": name,
            "images": len(images),
            "tensors": len(ours["thresholds"]),
            "edgesdk": ours,
            "edgesdk_single_pass": single,
        }
        if not skip_ort:
            sys.stderr.write(f"{name}: onnxruntime EntropyCalibrater on {len(images)} images\n")
            theirs = _onnxruntime(model, recipe, images)
            row["onnxruntime"] = theirs
            row["speedup"] = theirs["seconds"] / ours["seconds"]
            row["speedup_slowest"] = theirs["seconds"] / max(ours["seconds_runs"])
            row["speedup_cpu"] = theirs["cpu_seconds"] / ours["cpu_seconds"]
            row["speedup_single_pass"] = theirs["seconds"] / single["seconds"]
            row["speedup_single_pass_cpu"] = theirs["cpu_seconds"] / single["cpu_seconds"]
            row["thresholds"] = _compare(ours["thresholds"], theirs["thresholds"])
        rows.append(row)
    return rows


def _markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        f"CPU: {platform.processor() or platform.machine()}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}",
        "",
        "| model | images | tensors | edgesdk s (infer / stats / search) | onnxruntime s (collect / search) "
        "| speed-up (wall; vs slowest edgesdk run) | CPU s edgesdk / onnxruntime | speed-up (CPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        e = row["edgesdk"]
        ours = f"{e['seconds']:.1f} ({e['seconds_infer']:.1f} / {e['seconds_stats']:.1f} / {e['seconds_search']:.1f})"
        o = row.get("onnxruntime")
        theirs = (
            f"{o['seconds']:.1f} ({o['seconds_collect']:.1f} / {o['seconds_search']:.1f})" if o else "skipped"
        )
        speed = f"{row['speedup']:.1f}x ({row['speedup_slowest']:.1f}x)" if o else "-"
        cpu = f"{e['cpu_seconds']:.1f} / {o['cpu_seconds']:.1f}" if o else f"{e['cpu_seconds']:.1f} / -"
        speed_cpu = f"{row['speedup_cpu']:.1f}x" if o else "-"
        out.append(
            f"| {row['model']} | {row['images']} | {row['tensors']} | {ours} | {theirs} | {speed} | {cpu} | {speed_cpu} |"
        )
    out += [
        "",
        "| model | single pass s (infer / stats / search) | CPU s | speed-up wall / CPU vs onnxruntime "
        "| thresholds vs two passes: median / max rel. diff |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        e = row["edgesdk_single_pass"]
        ours = f"{e['seconds']:.1f} ({e['seconds_infer']:.1f} / {e['seconds_stats']:.1f} / {e['seconds_search']:.1f})"
        speed = (
            f"{row['speedup_single_pass']:.1f}x / {row['speedup_single_pass_cpu']:.1f}x"
            if "onnxruntime" in row
            else "-"
        )
        diff = e["vs_exact"]
        out.append(
            f"| {row['model']} | {ours} | {e['cpu_seconds']:.1f} | {speed} | "
            f"{100 * diff['median_rel_diff']:.2f} % / {100 * diff['max_rel_diff']:.2f} % |"
        )
    compared = [r for r in rows if "thresholds" in r]
    if compared:
        out += [
            "",
            "| model | tensors compared | median T_ort/T_edgesdk | p10 | p90 | within 5 % |",
            "|---|---|---|---|---|---|",
        ]
        for row in compared:
            t = row["thresholds"]
            out.append(
                f"| {row['model']} | {t['common']} | {t['median_ratio']:.3f} | {t['p10_ratio']:.3f} | "
                f"{t['p90_ratio']:.3f} | {100 * t['within_5pct']:.0f} % |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=settings.test_data())
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--models", default="yolox-nano,retinaface-mnet")
    parser.add_argument("--skip-ort", action="store_true", help="time edgesdk only")
    parser.add_argument("--repeat", type=int, default=3, help="edgesdk runs per model (the median counts)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    rows = run(args.shared, args.models.split(","), args.images, args.skip_ort, args.repeat)
    if args.json:
        for row in rows:
            for side in ("edgesdk", "edgesdk_single_pass", "onnxruntime"):
                row.get(side, {}).pop("thresholds", None)
        print(json.dumps(rows, indent=2))
    else:
        print(_markdown(rows))


if __name__ == "__main__":
    main()
