"""Benchmark: fp32 vs int8-simulated (Q/DQ on onnxruntime) mAP50 per calibrator, every real model.

COCO models on ``coco_val2017_first128`` (64 images) and, as a second subset, ``coco128``
(``--coco-extra``; COCO *train* images, so the fp32 figure is optimistic, but the int8 - fp32
difference is still a quantisation measure); face models on ``widerface_val200_416`` (150
images, natural aspect restored as ``edgesdk eval`` does). Calibration images: by default the
first evaluation folder itself (the int8 preview's default; optimistic), or ``--coco-calib`` /
``--face-calib`` (folders under ``data/``). Statistics are gathered once per model; every
calibrator gets its own Q/DQ model through :func:`edgesdk.quant.calibrate.finish` (the product
path). Then ``mixed + bias correction`` (``quantize.bias_correction: true``), and, ranked once by
:mod:`edgesdk.quant.sensitivity` on the mixed thresholds, the same with the consumers of the
top k activations kept in float (k in ``--keep-steps``; what ``quantize.keep_fp_auto: k`` does).

``--variants 'JSON;JSON'`` instead evaluates the recipe's *own* quantize section (not cleared)
with each JSON object's keys replaced, e.g. ``'{};{"equalize": true, "mixed_images": 32}'``
(``{}`` = the recipe as it is); statistics are gathered once per distinct equalisation and
weight-rounding setting. It also reports mAP50 over the classes with at least :data:`FREQUENT`
boxes in each set (on 64 images a single-box class moves the mean by 1.6 points per detection)
and, with ``--error-images N``, the raw-output error on the first N images of ``--error-data``
(default: the last evaluation set; pass the calibration folder to keep the evaluation sets out).

Prints a Markdown table on stdout (progress on stderr); writes no file. Not collected by pytest.

Usage::

    python tests/benchmarks/bench_int8_map.py [--shared DIR] [--models a,b]
        [--calibrators entropy,entropy-nozero,minmax,percentile,mse,mixed] [--coco-calib DIR]
        [--face-calib DIR] [--coco-extra DIR|''] [--keep-steps 1,2,4] [--no-keep] [--json]
    python tests/benchmarks/bench_int8_map.py --models yolo-fastest --variants '{};{"equalize": true}'
        [--error-images 32 --error-data coco_val2017_first128]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from edgesdk import settings
from edgesdk.eval.dataset import load_dataset
from edgesdk.eval.runner import EvalResult, evaluate
from edgesdk.export import export_recipe
from edgesdk.graph.io import onnxruntime_runner
from edgesdk.quant.calibrate import Prepared, finish, prepare
from edgesdk.quant.sensitivity import keep_fp_for, rank_sensitivity
from edgesdk.quant.stats import ImageBatches
from edgesdk.quant.summary import compute_thresholds
from edgesdk.recipe import load_recipe

COCO = ("yolo-fastest", "yolov5n", "yolox-nano")
FACES = ("retinaface-mnet", "yunet", "ultraface-rfb320")
COCO_DATA = "coco_val2017_first128"
FACE_DATA = "widerface_val200_416"
FREQUENT = 4
"""``--variants`` also reports mAP50 over the classes with at least this many boxes in the set: on
64 images a class with one box moves the mean by 1/63 of its AP when a single detection changes."""


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


def _with(prepared: Prepared, **update: Any) -> Prepared:
    recipe = prepared.recipe
    quantize = recipe.quantize.model_copy(update=update)
    return dataclasses.replace(prepared, recipe=recipe.model_copy(update={"quantize": quantize}))


def _scores(
    sets: list[Path], models: Path, prepared: Prepared, calibrator: str | None, label: str
) -> list[float]:
    return [_map50(data, models, prepared, calibrator, f"{label} [{data.name}]") for data in sets]


def _keep_steps(
    prepared: Prepared, sets: list[Path], models: Path, fp32: list[float], steps: list[int]
) -> list[dict[str, Any]]:
    ranked = rank_sensitivity(
        prepared, compute_thresholds(finish(prepared, "mixed").tensors), progress=_progress("sensitivity")
    )
    rows = []
    for k in steps:
        names = keep_fp_for(ranked, k)
        variant = _with(prepared, keep_fp=[*prepared.recipe.quantize.keep_fp, *names], bias_correction=True)
        scores = _scores(sets, models, variant, "mixed", f"mixed+bc keep top {k}")
        rows.append(
            {"top": k, "keep_fp": names, "map50": scores, "delta": [a - b for a, b in zip(scores, fp32)]}
        )
    return rows


def run_model(
    shared: Path, name: str, calibrators: list[str], calib_dir: str, extra: str, steps: list[int]
) -> dict[str, Any]:
    started = time.perf_counter()
    recipe = load_recipe(name)  # its own quantize section is cleared: every column starts from the defaults
    plain = recipe.quantize.model_copy(update={"keep_fp": [], "keep_fp_auto": 0, "bias_correction": False})
    recipe = recipe.model_copy(update={"quantize": plain})
    sets = [shared / "data" / (FACE_DATA if name in FACES else COCO_DATA)]
    if extra and name not in FACES:
        sets.append(shared / "data" / extra)
    models = shared / "models"
    prepared = prepare(recipe, shared / "data" / calib_dir, model_dir=models, progress=_progress(name))
    fp32 = _scores(sets, models, prepared, None, f"{name} fp32")
    int8 = {c: _scores(sets, models, prepared, c, f"{name} {c}") for c in calibrators}
    int8["mixed+bc"] = _scores(
        sets, models, _with(prepared, bias_correction=True), "mixed", f"{name} mixed+bc"
    )
    row = {
        "model": name,
        "data": [d.name for d in sets],
        "calib_dir": calib_dir,
        "calib_images": prepared.stats.images,
        "fp32": fp32,
        "int8": int8,
        "keep": _keep_steps(prepared, sets, models, fp32, steps) if steps else [],
    }
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _output_error(prepared: Prepared, qdq: Any, data: Path, count: int, model: Any) -> float:
    """Mean over ``count`` images of ``data`` of the relative L2 error of the raw outputs vs float
    ``model`` (the recipe's own export: an equalised or GPTQ-rounded model is not the reference)."""
    images = sorted(p for p in data.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    name = model.graph.input[0].name
    float_run, int8_run = onnxruntime_runner(model), onnxruntime_runner(qdq)
    errors = []
    for batch in ImageBatches(images, prepared.recipe):
        want, got = float_run({name: batch}), int8_run({name: batch})
        errors.append(np.mean([np.linalg.norm(got[k] - w) / np.linalg.norm(w) for k, w in want.items()]))
    return float(np.mean(errors))


@functools.lru_cache(maxsize=None)
def _box_counts(data: Path, single_class: bool) -> dict[str, int]:
    dataset = load_dataset(data, single_class=single_class)
    counts: dict[str, int] = {}
    for image in dataset.images:
        for class_id, ignore in zip(image.class_ids, image.ignore):
            if not ignore:
                name = dataset.names[int(class_id)]
                counts[name] = counts.get(name, 0) + 1
    return counts


def _frequent_map50(result: EvalResult, data: Path, single_class: bool) -> float:
    """mAP50 (%) over the classes with at least :data:`FREQUENT` boxes in ``data``."""
    counts = _box_counts(data, single_class)
    aps = [ap for name, ap in result.ap50_per_class.items() if counts.get(name, 0) >= FREQUENT]
    return 100 * float(np.mean(aps)) if aps else float("nan")


def run_variants(
    shared: Path,
    name: str,
    variants: list[dict[str, Any]],
    calib_dir: str,
    extra: str,
    error_images: int = 0,
    error_data: str = "",
) -> dict[str, Any]:
    """The recipe's own quantize section with each variant's keys replaced; fp32 first.

    With ``error_images``, also the raw-output error of each Q/DQ model vs the float model on the
    first ``error_images`` images of ``error_data`` (a folder under ``data/``; default: the last
    evaluation set) — a less noisy damage measure than mAP, and one that needs no labels.
    """
    started = time.perf_counter()
    recipe = load_recipe(name)
    sets = [shared / "data" / (FACE_DATA if name in FACES else COCO_DATA)]
    if extra and name not in FACES:
        sets.append(shared / "data" / extra)
    models = shared / "models"
    prepared: dict[tuple[Any, ...], Prepared] = {}
    reference = export_recipe(recipe, model_dir=models, check_parity=False).model
    fp32: list[float] = []
    frequent: dict[str, list[float]] = {}
    scores: dict[str, list[float]] = {}
    single = name in FACES
    errors: dict[str, float] = {}
    auto: dict[str, list[str]] = {}
    for update in variants:
        variant = recipe.model_copy(update={"quantize": recipe.quantize.model_copy(update=update)})
        quantize = variant.quantize
        rounded = quantize.weight_rounding != "nearest"  # the rounding leaves keep_fp's layers alone
        key: tuple[Any, ...] = (quantize.equalize, quantize.equalize_strength, quantize.weight_rounding)
        key += tuple(quantize.keep_fp) if rounded else ()
        if key not in prepared:
            prepared[key] = prepare(
                variant, shared / "data" / calib_dir, model_dir=models, progress=_progress(name)
            )
        state = dataclasses.replace(prepared[key], recipe=variant)
        if not fp32:
            base = [
                evaluate(variant, data, model_dir=models, progress=_progress(f"{name} fp32 [{data.name}]"))
                for data in sets
            ]
            fp32 = [100 * e.map50 for e in base]
            frequent["fp32"] = [_frequent_map50(e, d, single) for e, d in zip(base, sets)]
        label = json.dumps(update, separators=(",", ":"))
        result = finish(state, variant.quantize.calibrator)
        evaluated = [
            evaluate(variant, data, model_dir=models, model_override=result.qdq, progress=_progress(label))
            for data in sets
        ]
        scores[label] = [100 * e.map50 for e in evaluated]
        frequent[label] = [_frequent_map50(e, d, single) for e, d in zip(evaluated, sets)]
        if error_images:
            error_set = shared / "data" / error_data if error_data else sets[-1]
            errors[label] = _output_error(state, result.qdq, error_set, error_images, reference)
        if result.refined is not None and result.refined.auto_keep:
            auto[label] = result.refined.auto_keep
    return {
        "model": name,
        "data": [d.name for d in sets],
        "calib_dir": calib_dir,
        "fp32": fp32,
        "variants": scores,
        f"map50_classes_{FREQUENT}plus": frequent,
        "output_error": errors,
        "error_data": error_data or sets[-1].name,
        "keep_fp_auto": auto,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _variants_markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        f"onnxruntime {onnxruntime.__version__} (CPU), int8 = Q/DQ simulation of the recipe's quantize section "
        "with the keys shown replaced; mAP50 in %, (Δ) in points vs fp32; first / second evaluation set; "
        f"frequent classes: mAP50 over the classes with >= {FREQUENT} boxes in the set",
        "",
        "| model | data | fp32 | variant | int8 | frequent classes: fp32 / int8 | output error |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fp32 = " / ".join(f"{f:.1f}" for f in row["fp32"])
        frequent = row[f"map50_classes_{FREQUENT}plus"]
        for label, scores in row["variants"].items():
            out.append(
                f"| {row['model']} | {' / '.join(row['data'])} | {fp32} | `{label}` | {_cell(scores, row['fp32'])} | "
                + " / ".join(f"{f:.1f}" for f in frequent["fp32"])
                + f"; {_cell(frequent[label], frequent['fp32'])} | "
                + (f"{100 * row['output_error'][label]:.2f} %" if label in row["output_error"] else "-")
                + " |"
            )
    return "\n".join(out)


def _cell(scores: list[float], fp32: list[float]) -> str:
    return " / ".join(f"{s:.1f} ({s - f:+.1f})" for s, f in zip(scores, fp32))


def _markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(c for row in rows for c in row["int8"]))
    out = [
        f"onnxruntime {onnxruntime.__version__} (CPU), int8 = Q/DQ simulation; mAP50 in %, (Δ) in points vs fp32;"
        " two figures: first / second evaluation set",
        "",
        "| model | data | calibration images | fp32 | " + " | ".join(columns) + " | mixed+bc + keep top k |",
        "|" + "---|" * (5 + len(columns)),
    ]
    for row in rows:
        fp32 = row["fp32"]
        cells = [_cell(row["int8"][c], fp32) if c in row["int8"] else "-" for c in columns]
        keep = "; ".join(
            f"k={step['top']} ({len(step['keep_fp'])} nodes): {_cell(step['map50'], fp32)}"
            for step in row["keep"]
        )
        out.append(
            f"| {row['model']} | {' / '.join(row['data'])} | {row['calib_dir']} ({row['calib_images']}) | "
            + " / ".join(f"{f:.1f}" for f in fp32)
            + " | "
            + " | ".join(cells)
            + f" | {keep or '-'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=settings.test_data())
    parser.add_argument("--models", default=",".join(COCO + FACES))
    parser.add_argument("--calibrators", default="entropy,entropy-nozero,minmax,percentile,mse,mixed")
    parser.add_argument(
        "--coco-calib", default=COCO_DATA, help="calibration folder for COCO models (under data/)"
    )
    parser.add_argument(
        "--face-calib", default=FACE_DATA, help="calibration folder for face models (under data/)"
    )
    parser.add_argument(
        "--coco-extra", default="coco128", help="second evaluation folder for COCO models ('' for none)"
    )
    parser.add_argument("--keep-steps", default="1,2,4", help="k values for mixed+bc + keep top k")
    parser.add_argument("--no-keep", action="store_true", help="skip the keep_fp sensitivity steps")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument(
        "--variants", default="", help="';'-separated JSON quantize updates of the recipe's own section"
    )
    parser.add_argument(
        "--error-images", type=int, default=0, help="with --variants: raw-output error on N images"
    )
    parser.add_argument(
        "--error-data", default="", help="folder under data/ for --error-images (default: the last eval set)"
    )
    args = parser.parse_args()
    if args.variants:
        variants = [json.loads(v) for v in args.variants.split(";") if v.strip()]
        rows = []
        for name in args.models.split(","):
            calib = args.face_calib if name in FACES else args.coco_calib
            rows.append(
                run_variants(
                    args.shared, name, variants, calib, args.coco_extra, args.error_images, args.error_data
                )
            )
            sys.stderr.write(json.dumps(rows[-1]) + "\n")
        print(json.dumps(rows, indent=2) if args.json else _variants_markdown(rows))
        return
    calibrators = args.calibrators.split(",")
    steps = [] if args.no_keep else [int(k) for k in args.keep_steps.split(",") if k]
    rows = []
    for name in args.models.split(","):
        calib = args.face_calib if name in FACES else args.coco_calib
        rows.append(run_model(args.shared, name, calibrators, calib, args.coco_extra, steps))
        sys.stderr.write(json.dumps(rows[-1]) + "\n")
    print(json.dumps(rows, indent=2) if args.json else _markdown(rows))


if __name__ == "__main__":
    main()
