"""Every method on every real model it applies to: a valid, smaller model with unchanged outputs.

Data-driven methods sample one image here (the benchmark uses many more).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgesdk.graph.inspect import inspect_model
from edgesdk.graph.io import run_onnxruntime
from edgesdk.recipe import load_recipe
from edgesdk.slim.activations import calibration_feeds
from edgesdk.slim.apply import apply_plan
from edgesdk.slim.plan import make_plan
from edgesdk.slim.reconstruct import reconstructor

BN = "yolov5n_coco/yolov5n_bn_unfused.onnx"
SLOW = {("yolov5n", "lasso"), ("yolox-nano", "thinet"), ("retinaface-mnet", "lasso")}  # > 5 s each
CASES = [
    *[(name, None, {}, method) for name in ("yolox-nano", "yolo-fastest", "retinaface-mnet", "yunet",
                                            "ultraface-rfb320") for method in ("l1", "thinet", "lasso")],
    ("yolov5n", BN, {}, "l1"),
    ("yolov5n", BN, {}, "lasso"),
    ("yolov5n", BN, {}, "bn"),
    ("ultraface-rfb320", None, {}, "bn"),
    ("yolo-fastest", None, {"model__fuse_bn": False}, "bn"),
    ("yolo-fastest", None, {}, "sss"),
    ("yolov5n", BN, {}, "sss"),
    ("yolox-nano", None, {}, "sss"),
]  # fmt: skip


PARAMS = [
    pytest.param(*case, id=f"{case[0]}{'-bn' if case[1] or case[2] else ''}-{case[3]}",
                 marks=[pytest.mark.slow] if (case[0], case[3]) in SLOW else [])
    for case in CASES
]  # fmt: skip


@pytest.mark.parametrize(("name", "model", "updates", "method"), PARAMS)
def test_method_on_real_model(exported, sample_images, name, model, updates, method) -> None:
    original = exported(name, model, **updates)
    recipe = load_recipe(name)
    feeds, _ = calibration_feeds(recipe, original, Path(sample_images["bus"]).parent, 1)
    ratio = 0.05 if method == "sss" and name == "yolox-nano" else 0.15
    # the measured-damage allocation has its own real-model test (test_sensitivity); here: validity
    plan = make_plan(
        original, method=method, ratio=ratio, extras={"feeds": feeds, "allocation": "layer-error"}
    )
    refit = reconstructor(original, feeds) if plan.reconstruct else None
    slim = apply_plan(original, plan, reconstruct=refit)
    onnx.checker.check_model(slim)
    assert inspect_model(slim).flops == plan.flops_after <= (1 - ratio) * plan.flops_before
    want, got = run_onnxruntime(original, feeds[0]), run_onnxruntime(slim, feeds[0])
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in want.items()}
    assert all(np.isfinite(v).all() for v in got.values())
