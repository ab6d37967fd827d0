"""Benchmark: COCO-style mAP of every real model on the shared labelled subsets.

COCO models on ``coco_val2017_first128`` (64 images); face models on ``widerface_val200_416``
(150 images, natural aspect restored), once with every face and once ignoring faces with a
side below ``--face-min-size`` px (most WIDER faces are tiny). Prints a Markdown table on
stdout (progress on stderr); it writes no file. Not collected by pytest (not ``test_*.py``).

Usage::

    python tests/benchmarks/bench_eval.py [--shared DIR] [--limit N] [--face-min-size 12] [--json]

Protocol (``edgesdk eval``): onnxruntime CPU, pycocotools bbox, score >= 0.001, at most 300
detections per image, the recipe's NMS IoU; images/s covers read + preprocess + inference +
decode/NMS per image (batch 1), on whatever CPU runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any, Optional

import onnxruntime

from edgesdk import settings
from edgesdk.eval.runner import EvalResult, evaluate
from edgesdk.recipe import load_recipe

COCO = ("yolo-fastest", "yolov5n", "yolox-nano")
FACES = ("retinaface-mnet", "yunet", "ultraface-rfb320")
COCO_DATA = "coco_val2017_first128"
FACE_DATA = "widerface_val200_416"


def _runs(face_min_size: float) -> list[tuple[str, str, float]]:
    runs = [(name, COCO_DATA, 0.0) for name in COCO]
    for name in FACES:
        runs.append((name, FACE_DATA, 0.0))
        if face_min_size > 0:
            runs.append((name, FACE_DATA, face_min_size))
    return runs


def _progress(label: str) -> Any:
    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r{label}: {done}/{total}{end}")
        sys.stderr.flush()

    return report


def _row(result: EvalResult, data: str) -> dict[str, Any]:
    min_size = result.protocol["min_size"]
    label = f"{data} (faces >= {min_size:g} px)" if min_size > 0 else data
    return {
        "model": result.model,
        "data": label,
        "images": result.images,
        "map50": result.map50,
        "map50_95": result.map50_95,
        "images_per_s": result.images_per_s,
        "nms_iou": result.protocol["iou_threshold"],
        "gt_boxes": result.num_gt,
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | data | images | GT boxes | NMS IoU | mAP50 | mAP50-95 | images/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['data']} | {r['images']} | {r['gt_boxes']} | {r['nms_iou']:g} | "
            f"{100 * r['map50']:.1f} | {100 * r['map50_95']:.1f} | {r['images_per_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=settings.test_data(), help="folder with models/ and data/"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images of each dataset")
    parser.add_argument(
        "--face-min-size", type=float, default=12.0, help="second WIDER row: ignore smaller faces"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of Markdown")
    args = parser.parse_args(argv)
    rows = []
    for name, data, min_size in _runs(args.face_min_size):
        result = evaluate(
            load_recipe(name),
            args.shared / "data" / data,
            model_dir=args.shared / "models",
            limit=args.limit,
            min_size=min_size,
            progress=_progress(f"{name} on {data} (min size {min_size:g})"),
        )
        rows.append(_row(result, data))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(_markdown(rows))
    print()
    print(
        f"onnxruntime {onnxruntime.__version__} CPU, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; score >= 0.001, <= 300 dets/image, recipe NMS IoU; "
        "WIDER images resized to their natural aspect (annotations.json)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
