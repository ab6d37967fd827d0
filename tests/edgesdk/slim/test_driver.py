"""slim_recipe: the library behind the command (recipe section, dry run, refusals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk.errors import PruneError
from edgesdk.recipe import load_recipe, override
from edgesdk.slim.driver import check_method, default_output, slim_exported, slim_recipe


def test_recipe_section_drives_the_run(models_dir: Path, tmp_path: Path) -> None:
    recipe = override(
        load_recipe("yolo-fastest"), {"slim.ratio": 0.4, "slim.scope": "uniform", "slim.round_to": 4}
    )
    report = slim_recipe(recipe, model_dir=models_dir, output=tmp_path / "s.onnx", latency_runs=0)
    assert report.plan.ratio == 0.4 and report.plan.scope == "uniform" and report.plan.round_to == 4
    assert report.after is not None and report.after.flops == report.plan.flops_after
    assert 1 - report.after.flops / report.before.flops >= 0.4 and report.output == tmp_path / "s.onnx"
    assert all(len(g.kept) % 4 == 0 or g.size < 4 or len(g.kept) == g.size for g in report.plan.groups)


def test_dry_run_measures_only_the_original(models_dir: Path) -> None:
    report = slim_recipe(load_recipe("yolo-fastest"), model_dir=models_dir, dry_run=True, latency_runs=2)
    assert report.dry_run and report.before.latency_ms and report.before.latency_ms > 0


def test_unknown_method_is_refused() -> None:
    with pytest.raises(PruneError, match="'magic' is not implemented yet") as err:
        check_method("magic")
    assert "l1" in (err.value.hint or "") and "random" not in (err.value.hint or "")
    assert default_output(load_recipe("yunet")) == Path("out/yunet.slim.onnx")


def test_slim_exported_for_pipelines(exported) -> None:
    import json

    recipe = override(load_recipe("yunet"), {"slim.ratio": 0.25})
    slim, plan = slim_exported(recipe, exported("yunet"))
    meta = {p.key: p.value for p in slim.metadata_props}
    assert json.loads(meta["edgesdk.slim"])["removed_flops"] == round(plan.removed_flops, 4) >= 0.25


def test_reviewed_refit_plan_needs_images(models_dir: Path, exported, sample_images) -> None:
    from edgesdk.slim.plan import make_plan

    plan = make_plan(exported("yunet"), method="l1", ratio=0.2, extras={"reconstruct": True})
    assert plan.reconstruct
    with pytest.raises(PruneError, match="asks for the least-squares refit"):
        slim_recipe(load_recipe("yunet"), model_dir=models_dir, plan=plan, latency_runs=0)
    images = Path(sample_images["bus"]).parent
    recipe = override(load_recipe("yunet"), {"slim.joint": 40})  # the joint refit too, briefly
    report = slim_recipe(recipe, model_dir=models_dir, plan=plan, images=images, latency_runs=0)
    assert report.after is not None and any("least squares" in n for n in report.notes)
    assert any("refitted together with their consumers (40 Adam steps" in n for n in report.notes)


def test_recipe_match_rescales_the_refitted_convs(
    models_dir: Path, exported, sample_images, tmp_path: Path
) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from edgesdk.slim.plan import make_plan

    plan = make_plan(exported("yunet"), method="l1", ratio=0.2, extras={"reconstruct": True})
    images = Path(sample_images["bus"]).parent
    weights = {}
    for match in ("none", "affine"):
        recipe = override(load_recipe("yunet"), {"slim.match": match, "slim.joint": 0})
        out = tmp_path / f"{match}.onnx"
        report = slim_recipe(
            recipe, model_dir=models_dir, plan=plan, images=images, output=out, latency_runs=0
        )
        assert (match == "affine") == any("statistics matched" in n for n in report.notes)
        weights[match] = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer}
    assert weights["none"].keys() == weights["affine"].keys()
    changed = [n for n, w in weights["none"].items() if not np.array_equal(w, weights["affine"][n])]
    assert changed and all(weights["none"][n].shape == weights["affine"][n].shape for n in changed)


def test_recipe_tensor_share_reaches_the_planner(exported) -> None:
    from edgesdk.slim.driver import _recipe_plan

    recipe = load_recipe("yolo-fastest")
    assert recipe.slim.tensor_share == 10  # the shipped recipe's choice (docs/benchmarks.md, round 7)
    extras: dict = {}
    _recipe_plan(
        override(recipe, {"slim.method": "l1"}, "test"), exported("yolo-fastest"), extras, "flops", 0
    )
    assert extras["tensor_share"] == 10
    extras = {}
    plain = override(load_recipe("yolov5n"), {"slim.method": "l1"}, "test")
    _recipe_plan(plain, exported("yolov5n"), extras, "flops", 0)
    assert "tensor_share" not in extras  # unset: the planner's default
