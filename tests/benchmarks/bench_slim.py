"""Benchmark: slimming every real model with every method that applies, at 30 % and 50 % FLOPs.

Per (model, method, ratio): params, FLOPs (2 x MACs of Conv/Gemm), onnxruntime CPU latency
ratio (slim / original, median of interleaved runs, 1 thread) and mAP50 before/after
WITHOUT fine-tuning. COCO models are scored on ``coco_val2017_first128`` and calibrated
(thinet, lasso, sss) on ``coco128`` (train images, disjoint); face models are scored on the
first ``--face-eval`` images of ``widerface_val200_416`` (faces below ``--face-min-size`` px
ignored, as in bench_eval) and calibrated on the images after those. ``l1+refit`` is ``l1``
followed by the least-squares refit (what ``--images`` adds to l1). ``thinet`` and ``lasso``
allocate by measured output damage (:mod:`edgesdk.slim.sensitivity`); ``thinet@layer`` /
``lasso@layer`` use the per-layer error threshold they used before. ``bn`` runs on the
models that keep BatchNormalization: Ultra-Light RFB-320, YOLOv5n ``_bn_unfused`` and
Yolo-Fastest imported with ``fuse_bn: false``.

Prints Markdown tables on stdout (progress on stderr); ``--json FILE`` also writes every row.
Not collected by pytest (not ``test_*.py``).

Usage::

    python tests/benchmarks/bench_slim.py [--models a,b] [--methods l1,thinet] [--ratios 0.3,0.5]
        [--images 64] [--limit N] [--match affine] [--json out.json]

``--match affine`` matches the refitted layers' output statistics to the original's after the
least-squares refit (:mod:`edgesdk.slim.statmatch`; ``--match-layers`` picks other layers).
``--activation-aware`` makes the refit weigh rows by the activation after each layer
(:func:`edgesdk.slim.reconstruct.refit`); ``--joint N`` fits each cut conv's kept filters together
with its consumers (:mod:`edgesdk.slim.joint`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import onnxruntime

from edgesdk import settings
from edgesdk.errors import PruneError
from edgesdk.export import export_recipe, list_images
from edgesdk.graph.io import save_model
from edgesdk.recipe import Recipe, load_recipe, override
from edgesdk.slim.activations import calibration_feeds
from edgesdk.slim.apply import apply_plan
from edgesdk.slim.measure import accuracy, latencies, static_stats
from edgesdk.slim.plan import Target, make_plan
from edgesdk.slim.reconstruct import reconstructor

COCO = ("yolox-nano", "yolo-fastest", "yolov5n")
FACES = ("retinaface-mnet", "yunet", "ultraface-rfb320")
METHODS = ("l1", "l1+refit", "bn", "thinet", "lasso", "sss")
BN_SOURCE: dict[str, tuple[str | None, dict[str, Any]]] = {
    "yolov5n": ("yolov5n_coco/yolov5n_bn_unfused.onnx", {}),
    "yolo-fastest": (None, {"model.fuse_bn": False}),
    "ultraface-rfb320": (None, {}),
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Subject:
    """One model variant: its recipe, exported model, data and baseline numbers (computed once)."""

    def __init__(self, name: str, bn: bool, shared: Path, args: argparse.Namespace, calib_dir: Path) -> None:
        model, updates = BN_SOURCE[name] if bn else (None, {})
        recipe = load_recipe(name)
        self.recipe: Recipe = override(recipe, updates, "bench") if updates else recipe
        self.label = name + (" (BN kept)" if bn and name != "ultraface-rfb320" else "")
        models = shared / "models"
        path = models / model if model else None
        self.model = export_recipe(self.recipe, model_dir=models, model=path, check_parity=False).model
        face = name in FACES
        self.data = shared / "data" / ("widerface_val200_416" if face else "coco_val2017_first128")
        self.limit = args.face_eval if face else args.limit
        self.min_size = args.face_min_size if face else 0.0
        self.feeds, self.calib_count = calibration_feeds(self.recipe, self.model, calib_dir, args.images)
        self.stats = static_stats(self.model)
        self.cache: dict[str, dict[str, Any]] = {}
        self.map50 = math.nan
        if not args.latency_only:
            self.map50, _ = accuracy(
                self.recipe, self.data, self.model, limit=self.limit, min_size=self.min_size
            )


def _face_calibration(shared: Path, skip: int, tmp: Path) -> Path:
    """The WIDER images after the first ``skip`` (disjoint from the evaluated ones), as a folder."""
    folder = tmp / "wider_calib"
    folder.mkdir(exist_ok=True)
    for path in list_images(shared / "data" / "widerface_val200_416" / "images")[skip:]:
        (folder / path.name).symlink_to(path)
    return folder


def _row(
    subject: Subject, method: str, ratio: float, args: argparse.Namespace, target: str = "flops"
) -> dict[str, Any]:
    row: dict[str, Any] = {"model": subject.label, "method": method, "ratio": ratio, "target": target}
    started = time.perf_counter()
    base, _, refit_flag = method.partition("+")  # "l1+refit": l1 channels, then the least-squares refit
    base, _, allocation = base.partition("@")  # "thinet@layer": the per-layer error allocation (before #6)
    extras: dict[str, Any] = {
        "feeds": subject.feeds,
        "reconstruct": refit_flag == "refit",
        "recipe": subject.recipe,
        "damage_images": args.damage_images,
    }
    if base in ("thinet", "lasso"):  # measurements (Gram matrices, trials) shared across ratios
        extras = subject.cache.setdefault(allocation or "sensitivity", dict(extras))
        extras["allocation"] = "layer-error" if allocation == "layer" else "sensitivity"
    extras["budget"] = args.budget or target
    share = args.tensor_share if args.tensor_share is not None else subject.recipe.slim.tensor_share
    if share is not None:
        extras["tensor_share"] = share  # read at each trial's damage: safe with the shared cache
    else:
        extras.pop("tensor_share", None)
    try:
        plan = make_plan(
            subject.model,
            method=base,
            ratio=ratio,
            round_to=args.round_to,
            extras=extras,
            target=cast(Target, target),
        )
    except PruneError as err:
        return {**row, "error": str(err)}
    refit = None
    if plan.reconstruct and not args.latency_only:
        match = None if args.match == "none" else args.match
        refit = reconstructor(
            subject.model,
            subject.feeds,
            match=match,
            match_layers=args.match_layers,
            activation_aware=args.activation_aware,
            seed=args.refit_seed,
            joint=subject.recipe.slim.joint if args.joint is None else args.joint,
        )
    slim = apply_plan(subject.model, plan, reconstruct=refit)
    seconds = time.perf_counter() - started
    after = static_stats(slim)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        label = subject.label.replace(" ", "_").replace("(", "").replace(")", "")
        save_model(subject.model, args.save / f"{label}.onnx")
        suffix = "" if target == "flops" else f"~{target}"
        save_model(slim, args.save / f"{label}__{method}{suffix}__{ratio:g}.onnx")
    before_ms, after_ms = math.nan, math.nan
    if args.runs > 0:  # timing: run under `flock /tmp/edgesdk-timing.lock` on a shared host
        before_ms, after_ms = latencies(
            [subject.model, slim],
            runs=args.runs,
            threads=1,
            statistic=args.latency_stat,
            clock=args.latency_clock,
        )
    map50 = math.nan
    if not args.latency_only:
        map50, _ = accuracy(
            subject.recipe, subject.data, slim, limit=subject.limit, min_size=subject.min_size
        )
    return {
        **row,
        "removed_flops": round(1 - after.flops / subject.stats.flops, 4),
        "params": [subject.stats.params, after.params],
        "flops": [subject.stats.flops, after.flops],
        "latency_ms": [round(before_ms, 2), round(after_ms, 2)],
        "latency_ratio": round(after_ms / before_ms, 3) if args.runs > 0 else None,
        "map50": [round(subject.map50, 4), round(map50, 4)],
        "slim_seconds": round(seconds, 1),
        "predicted_ms": plan.predicted_ms,
        "reconstructed": plan.reconstruct,
        "notes": plan.notes,
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | method | asked | FLOPs removed | params (M) | GFLOPs | latency ratio | mAP50 before | mAP50 after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        suffix = "" if r.get("target", "flops") == "flops" else f" ~{r['target']}"
        head = f"| {r['model']} | {r['method']}{suffix} | {r['ratio']:.0%} "
        if "error" in r:
            lines.append(head + f"| n/a: {r['error'].split(' (')[0]} | | | | | |")
            continue
        (p0, p1), (f0, f1) = r["params"], r["flops"]
        (m0, m1) = r["map50"]
        lines.append(
            head
            + f"| {r['removed_flops']:.1%} | {p0 / 1e6:.3f} → {p1 / 1e6:.3f} | {f0 / 1e9:.3f} → {f1 / 1e9:.3f} "
            f"| {'–' if r['latency_ratio'] is None else format(r['latency_ratio'], '.2f')} "
            f"| {m0 * 100:.1f} | {m1 * 100:.1f} |"
        )
    return "\n".join(lines)


def _saved_latencies(folder: Path, args: argparse.Namespace) -> None:
    """Latency ratio of every slim model ``--save`` wrote, against its original (timing only)."""
    from edgesdk.graph.io import load_model

    print("| model | method | asked | latency ms (before → after) | latency ratio |\n|---|---|---|---|---|")
    for path in sorted(folder.glob("*__*__*.onnx")):
        label, method, ratio = path.stem.split("__")
        before, after = latencies(
            [load_model(folder / f"{label}.onnx"), load_model(path)],
            runs=args.runs,
            threads=1,
            statistic=args.latency_stat,
            clock=args.latency_clock,
        )
        print(
            f"| {label} | {method} | {float(ratio):.0%} | {before:.2f} → {after:.2f} | {after / before:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=settings.test_data())
    parser.add_argument("--models", default=",".join(COCO + FACES))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--ratios", default="0.3,0.5")
    parser.add_argument("--images", type=int, default=64, help="calibration images (thinet, lasso, sss)")
    parser.add_argument("--limit", type=int, default=None, help="COCO images evaluated (default: all 128)")
    parser.add_argument(
        "--face-eval", type=int, default=100, help="WIDER images evaluated (the rest calibrate)"
    )
    parser.add_argument("--face-min-size", type=float, default=12.0)
    parser.add_argument("--runs", type=int, default=20, help="timed latency runs per model")
    parser.add_argument("--latency-stat", choices=["median", "min"], default="median")
    parser.add_argument(
        "--latency-clock", choices=["wall", "cpu"], default="wall", help="cpu: the timing thread's CPU time"
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="skip mAP and refitting (latency depends on the plan only)",
    )
    parser.add_argument("--round-to", type=int, default=8, help="kept channel counts: multiples of this")
    parser.add_argument("--damage-images", type=int, default=4, help="images of the sensitivity trials")
    parser.add_argument(
        "--match",
        choices=["none", "affine", "mean"],
        default="none",
        help="statistics matching after the refit (edgesdk.slim.statmatch)",
    )
    parser.add_argument("--match-layers", choices=["refitted", "downstream", "unfitted"], default="refitted")
    parser.add_argument(
        "--activation-aware",
        action="store_true",
        help="refit weighted by where the next activation is flat (reconstruct.refit(activation_aware=True))",
    )
    parser.add_argument(
        "--joint",
        type=int,
        default=None,
        help="Adam steps of the joint refit per block (edgesdk.slim.joint; default: the recipe's slim.joint)",
    )
    parser.add_argument(
        "--refit-seed",
        type=int,
        default=0,
        help="seed of the refit's sampled positions (the plan is the same)",
    )
    parser.add_argument(
        "--tensor-share",
        type=float,
        default=None,
        help="weight of the tensor damage next to the detection damage (default: the recipe's "
        "slim.tensor_share, else 0.1)",
    )
    parser.add_argument(
        "--targets", default="flops", help="comma list of make_plan targets: flops, latency (one row each)"
    )
    parser.add_argument(
        "--budget",
        choices=["flops", "latency"],
        default=None,
        help="count the ratio in this (default: target)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--save", type=Path, default=None, help="write the original and slim models here")
    parser.add_argument(
        "--latency-saved", type=Path, default=None, help="only time the models an earlier --save wrote there"
    )
    args = parser.parse_args()
    if args.latency_saved is not None:
        _saved_latencies(args.latency_saved, args)
        return
    ratios = [float(r) for r in args.ratios.split(",")]
    methods = args.methods.split(",")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        face_calib = _face_calibration(args.shared, args.face_eval, Path(tmp))
        for name in args.models.split(","):
            calib = face_calib if name in FACES else args.shared / "data" / "coco128"
            variants = [(False, [m for m in methods if not m.startswith("bn")])]
            if name in BN_SOURCE:
                variants.append((True, [m for m in methods if m.startswith("bn")]))
            for bn, todo in variants:
                if not todo:
                    continue
                _say(f"{name}{' (bn)' if bn else ''}: export, baseline mAP")
                subject = Subject(name, bn, args.shared, args, calib)
                for method in todo:
                    for ratio, target in itertools.product(ratios, args.targets.split(",")):
                        _say(f"  {method} {ratio:.0%} target {target}")
                        rows.append(_row(subject, method, ratio, args, target))
                        _say(f"    {json.dumps(rows[-1])}")
                        if args.json:
                            args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"onnxruntime {onnxruntime.__version__} CPU, 1 thread, {platform.processor() or platform.machine()}; "
          f"latency {args.latency_stat} of {args.runs} interleaved runs; calibration {args.images} images; "
          "no fine-tuning\n")  # fmt: skip
    print(_markdown(rows))


if __name__ == "__main__":
    main()
