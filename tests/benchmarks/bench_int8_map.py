"""Benchmark: fp32 vs int8-simulated (Q/DQ on onnxruntime) mAP50 per calibrator, every real model.

COCO models on ``coco_val2017_first128`` (64 images), face models on ``widerface_val200_416``
(150 images, natural aspect restored as ``edgesdk eval`` does). Calibration images: by default
the evaluation folder itself (the int8 preview's default; optimistic), or ``--coco-calib`` /
``--face-calib`` (folders under ``data/``). Statistics are gathered once per model; every
calibrator gets its own Q/DQ model. Then, for the best calibrator, the quantised activations
are ranked by :mod:`edgesdk.quant.sensitivity` and the consumers of the top k (1, 2, 4, 8 —
stopping once within 1 mAP50 point of fp32) are kept in float (``quantize.keep_fp``).

Prints a Markdown table on stdout (progress on stderr); writes no file. Not collected by pytest.

Usage::

    python tests/benchmarks/bench_int8_map.py [--shared DIR] [--models a,b]
        [--calibrators entropy,entropy-nozero,minmax,percentile,mse] [--coco-calib DIR] [--face-calib DIR]
        [--no-keep] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import onnxruntime

from edgesdk import settings
from edgesdk.eval.runner import evaluate
from edgesdk.quant.calibrate import Prepared, finish, prepare
from edgesdk.quant.sensitivity import keep_fp_for, rank_sensitivity
from edgesdk.quant.summary import compute_thresholds
from edgesdk.recipe import load_recipe

COCO = ("yolo-fastest", "yolov5n", "yolox-nano")
FACES = ("retinaface-mnet", "yunet", "ultraface-rfb320")
COCO_DATA = "coco_val2017_first128"
FACE_DATA = "widerface_val200_416"
KEEP_STEPS = (1, 2, 4, 8)


def _progress(label: str) -> Any:
    def report(*args: Any) -> None:
        *phase, done, total = args
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r{label} {' '.join(phase)}: {done}/{total}{end}")
        sys.stderr.flush()

    return report


def _map50(data: Path, models: Path, prepared: Prepared, calibrator: str | None, label: str) -> float:
    override = finish(prepared, calibrator).qdq if calibrator else None
    result = evaluate(
        prepared.recipe, data, model_dir=models, model_override=override, progress=_progress(label)
    )
    return 100 * result.map50


def _with_keep(prepared: Prepared, names: list[str]) -> Prepared:
    recipe = prepared.recipe
    quantize = recipe.quantize.model_copy(update={"keep_fp": [*recipe.quantize.keep_fp, *names]})
    return dataclasses.replace(prepared, recipe=recipe.model_copy(update={"quantize": quantize}))


def _keep_steps(prepared: Prepared, data: Path, models: Path, best: str, fp32: float) -> list[dict[str, Any]]:
    ranked = rank_sensitivity(
        prepared, compute_thresholds(finish(prepared, best).tensors), progress=_progress("sensitivity")
    )
    steps = []
    for k in KEEP_STEPS:
        names = keep_fp_for(ranked, k)
        score = _map50(data, models, _with_keep(prepared, names), best, f"{best} keep top {k}")
        steps.append({"top": k, "keep_fp": names, "map50": score, "delta": score - fp32})
        if score >= fp32 - 1.0:
            break
    return steps


def run_model(shared: Path, name: str, calibrators: list[str], calib_dir: str, keep: bool) -> dict[str, Any]:
    started = time.perf_counter()
    recipe = load_recipe(name)
    data = shared / "data" / (FACE_DATA if name in FACES else COCO_DATA)
    models = shared / "models"
    prepared = prepare(recipe, shared / "data" / calib_dir, model_dir=models, progress=_progress(name))
    fp32 = _map50(data, models, prepared, None, f"{name} fp32")
    int8 = {c: _map50(data, models, prepared, c, f"{name} {c}") for c in calibrators}
    best = max(int8, key=lambda c: int8[c])
    row = {
        "model": name,
        "data": data.name,
        "calib_dir": calib_dir,
        "calib_images": prepared.stats.images,
        "fp32": fp32,
        "int8": int8,
        "best": best,
        "keep": _keep_steps(prepared, data, models, best, fp32) if keep and int8[best] < fp32 - 1.0 else [],
    }
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _markdown(rows: list[dict[str, Any]], calibrators: list[str]) -> str:
    out = [
        f"onnxruntime {onnxruntime.__version__} (CPU), int8 = Q/DQ simulation; mAP50 in %, (Δ) in points vs fp32",
        "",
        "| model | data | calibration images | fp32 | "
        + " | ".join(calibrators)
        + " | best | best + keep_fp (top k sensitive) |",
        "|" + "---|" * (6 + len(calibrators)),
    ]
    for row in rows:
        fp32 = row["fp32"]
        cells = [f"{row['int8'][c]:.1f} ({row['int8'][c] - fp32:+.1f})" for c in calibrators]
        keep = "-"
        if row["keep"]:
            last = max(row["keep"], key=lambda step: step["map50"])  # the best step
            keep = (
                f"k={last['top']} ({len(last['keep_fp'])} nodes): {last['map50']:.1f} ({last['delta']:+.1f})"
            )
        out.append(
            f"| {row['model']} | {row['data']} | {row['calib_dir']} ({row['calib_images']}) | {fp32:.1f} | "
            + " | ".join(cells)
            + f" | {row['best']} | {keep} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=settings.test_data())
    parser.add_argument("--models", default=",".join(COCO + FACES))
    parser.add_argument("--calibrators", default="entropy,entropy-nozero,minmax,percentile,mse")
    parser.add_argument(
        "--coco-calib", default=COCO_DATA, help="calibration folder for COCO models (under data/)"
    )
    parser.add_argument(
        "--face-calib", default=FACE_DATA, help="calibration folder for face models (under data/)"
    )
    parser.add_argument("--no-keep", action="store_true", help="skip the keep_fp sensitivity steps")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    calibrators = args.calibrators.split(",")
    rows = [
        run_model(
            args.shared,
            name,
            calibrators,
            args.face_calib if name in FACES else args.coco_calib,
            not args.no_keep,
        )
        for name in args.models.split(",")
    ]
    print(json.dumps(rows, indent=2) if args.json else _markdown(rows, calibrators))


if __name__ == "__main__":
    main()
