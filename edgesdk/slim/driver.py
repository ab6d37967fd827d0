"""``slim_recipe``: export a recipe's model, plan, apply, measure, write — the library behind ``edgesdk slim``.

The recipe's ``slim`` section says how (method, ratio, scope, round_to, images); the CLI
overrides it through the recipe's own validation. The plan is made before anything is
cut; a dry run stops there (and still measures the original).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import onnx

from edgesdk.errors import PruneError
from edgesdk.recipe import Recipe
from edgesdk.slim.criteria import criterion, criterion_names
from edgesdk.slim.measure import ModelStats, accuracy, latencies, static_stats
from edgesdk.slim.plan import SlimPlan, Target, make_plan
from edgesdk.slim.report import SlimReport

log = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]
MatchMode = Literal["none", "affine", "mean"]


def check_method(method: str) -> None:
    """Refuse a method the recipe schema knows but this build does not implement.

    Raises:
        PruneError: names the implemented methods.
    """
    if method not in criterion_names():
        known = ", ".join(n for n in criterion_names() if n != "random")
        raise PruneError(f"slimming method {method!r} is not implemented yet", hint=f"use one of: {known}")


def _calibration(
    recipe: Recipe, model: onnx.ModelProto, images: Path | None, method: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    needed = criterion(method).needs_images
    if not needed and images is None:
        return {}, None
    if images is None:
        raise PruneError(
            f"method {method!r} samples activations from images, but no image folder was given",
            hint="pass --images DIR (representative images; the recipe's slim.images of them are used)",
        )
    from edgesdk.slim.activations import calibration_feeds

    feeds, used = calibration_feeds(recipe, model, images, recipe.slim.images)
    return {"feeds": feeds, "reconstruct": True, "recipe": recipe}, {"images": str(images), "count": used}


def _measure(
    recipe: Recipe,
    models: list[onnx.ModelProto],
    *,
    latency_runs: int,
    threads: int,
    data: Path | None,
    data_limit: int | None,
    say: ProgressFn,
) -> list[ModelStats]:
    stats = [static_stats(m) for m in models]
    if latency_runs > 0:
        say("latency")
        for item, ms in zip(stats, latencies(models, runs=latency_runs, threads=threads)):
            item.latency_ms = ms
    if data is not None:
        for index, (item, model) in enumerate(zip(stats, models)):
            say(f"mAP {'before' if index == 0 else 'after'}")
            item.map50, item.map50_95 = accuracy(recipe, data, model, limit=data_limit)
    return stats


def slim_recipe(
    recipe: Recipe,
    *,
    model_dir: Path | None = None,
    model: Path | None = None,
    images: Path | None = None,
    data: Path | None = None,
    data_limit: int | None = None,
    dry_run: bool = False,
    output: Path | None = None,
    plan: SlimPlan | None = None,
    latency_runs: int = 20,
    threads: int = 1,
    seed: int = 0,
    progress: ProgressFn | None = None,
    target: Target | None = None,
) -> SlimReport:
    """Slim the recipe's exported model as its ``slim`` section says.

    Args:
        recipe: the validated recipe (``recipe.slim``: method, ratio, scope, round_to, images).
        model_dir / model: where the model comes from (as for ``export``).
        images: image folder for data-driven methods (thinet, lasso, sss).
        data: labelled folder to measure mAP before and after (None: skip).
        data_limit: evaluate only the first N images of ``data``.
        dry_run: make and report the plan only.
        output: write the slim model here.
        plan: apply this (reviewed/edited) plan instead of making one.
        latency_runs: timed onnxruntime runs per model (0: skip latency).
        threads: onnxruntime threads for the latency measurement.
        seed: for sampling.
        progress: called with a short phase name.
        target: ``flops``: ``slim.ratio`` of the FLOPs go; ``latency``: of the predicted onnxruntime
            CPU latency, with thinet/lasso weighing damage per predicted ms (see ``make_plan``).
            None: the recipe's ``slim.target``, where ``latency`` weighs damage per predicted ms
            but ``slim.ratio`` still counts FLOPs.

    Raises:
        PruneError: unknown/unimplemented method, nothing prunable, ratio out of reach, a
            plan that does not fit.
    """
    from edgesdk.export import export_recipe
    from edgesdk.graph.io import save_model

    say = progress or (lambda _phase: None)
    started = time.perf_counter()
    spec = recipe.slim
    method = plan.method if plan is not None else spec.method
    check_method(method)
    say("export")
    original = export_recipe(recipe, model_dir=model_dir, model=model, check_parity=False).model
    extras, calibration = _calibration(recipe, original, images, method)
    target = _target(recipe, target, extras)
    if plan is not None and plan.reconstruct and not dry_run and "feeds" not in extras:
        raise PruneError(
            "this plan asks for the least-squares refit of the next layers, which samples images",
            hint="pass --images DIR (the calibration images)",
        )
    if plan is None:
        say("plan")
        extras["progress"] = lambda done, total: say(f"plan: scoring channel group {done + 1}/{total}")
        plan = _recipe_plan(recipe, original, extras, target, seed)
        extras.pop("progress")
    models = [original]
    notes: list[str] = []
    if not dry_run:
        say("apply")
        slim, notes = _apply(original, plan, extras, recipe.slim.match, recipe.slim.joint, say)
        models.append(slim)
    stats = _measure(
        recipe, models, latency_runs=latency_runs, threads=threads, data=data, data_limit=data_limit, say=say
    )
    report = SlimReport(
        recipe=recipe.name,
        plan=plan,
        before=stats[0],
        after=stats[1] if len(stats) > 1 else None,
        latency={"threads": threads, "runs": latency_runs, "provider": "CPUExecutionProvider"}
        if latency_runs > 0
        else None,
        data={"folder": str(data), "limit": data_limit} if data is not None else None,
        calibration=calibration,
        notes=notes + plan.notes,
    )
    if output is not None and len(models) > 1:
        say("write")
        report.output = save_model(models[1], output)
    report.seconds = time.perf_counter() - started
    return report


def _target(recipe: Recipe, target: Target | None, extras: dict[str, Any]) -> Target:
    """An explicit ``target`` as given; else the recipe's, whose ratio always counts FLOPs."""
    if target is not None:
        return target
    if recipe.slim.target == "latency":
        extras.setdefault("budget", "flops")
    return recipe.slim.target


def _recipe_plan(
    recipe: Recipe, model: onnx.ModelProto, extras: dict[str, Any], target: Target, seed: int
) -> SlimPlan:
    """``make_plan`` with the recipe's slim section (method, ratio, scope, round_to)."""
    spec = recipe.slim
    if spec.tensor_share is not None:
        extras["tensor_share"] = spec.tensor_share
    return make_plan(
        model,
        method=spec.method,
        ratio=spec.ratio,
        scope=spec.scope,
        round_to=spec.round_to,
        seed=seed,
        extras=extras,
        target=target,
    )


def _apply(
    original: onnx.ModelProto,
    plan: SlimPlan,
    extras: dict[str, Any],
    match: MatchMode = "none",
    joint: int = 0,
    say: Callable[[str], None] | None = None,
) -> tuple[onnx.ModelProto, list[str]]:
    """The slim model (provenance in ``metadata_props["edgesdk.slim"]``) and notes for the report."""
    from edgesdk.graph.io import set_metadata
    from edgesdk.slim.apply import apply_plan

    reconstruct = None
    notes = []
    if plan.reconstruct and "feeds" in extras:
        from edgesdk.slim.reconstruct import reconstructor

        matched = None if match == "none" else match
        progress = (lambda text: say(f"apply: {text}")) if say is not None else None
        reconstruct = reconstructor(original, extras["feeds"], match=matched, joint=joint, progress=progress)
        notes.append("consumer weights refitted by least squares on the calibration images")
        if joint:
            notes.append(f"cut convs refitted together with their consumers ({joint} Adam steps per block)")
        if matched is not None:
            notes.append(f"refitted convs' output statistics matched to the unpruned model's ({matched})")
    slim = apply_plan(original, plan, reconstruct=reconstruct)
    return set_metadata(slim, {"edgesdk.slim": json.dumps(_provenance(plan), sort_keys=True)}), notes


def slim_exported(
    recipe: Recipe,
    model: onnx.ModelProto,
    *,
    images: Path | None = None,
    seed: int = 0,
    target: Target | None = None,
) -> tuple[onnx.ModelProto, SlimPlan]:
    """Slim an already exported model as ``recipe.slim`` says (for pipelines such as deploy).

    Args:
        recipe: the recipe (its ``slim`` section: method, ratio, scope, round_to, images).
        model: the exported (fixed) model; not modified.
        images: calibration images for thinet/lasso/sss.
        seed: for sampling.
        target: what ``slim.ratio`` counts (``flops`` or ``latency``, see ``make_plan``); None:
            the recipe's ``slim.target`` (see :func:`slim_recipe`).

    Returns:
        (slim model, the plan it followed).

    Raises:
        PruneError: see :func:`slim_recipe`.
    """
    spec = recipe.slim
    check_method(spec.method)
    extras, _ = _calibration(recipe, model, images, spec.method)
    plan = _recipe_plan(recipe, model, extras, _target(recipe, target, extras), seed)
    return _apply(model, plan, extras, spec.match, spec.joint)[0], plan


def slim_for_deploy(
    recipe: Recipe, model: onnx.ModelProto, output: Path, *, images: Path | None = None
) -> dict[str, Any]:
    """Slim the exported ``model`` as ``recipe.slim`` says, write it to ``output``, summarise.

    What ``edgesdk deploy`` calls when ``slim.enabled`` is true, between export and bundle.

    Args:
        recipe: the recipe (``slim``: method, ratio, scope, round_to, images).
        model: the exported model; not modified.
        output: where the slim model is written (the exported file is replaced there).
        images: calibration images (needed by thinet/lasso/sss; with l1/bn they add the refit).

    Returns:
        Plain data for the deploy report: method, ratio, the FLOPs/params before and after,
        removed fraction, pruned groups, images used, whether the refit ran.

    Raises:
        PruneError: see :func:`slim_recipe` (e.g. thinet without ``images``).
    """
    from edgesdk.graph.io import save_model

    slim, plan = slim_exported(recipe, model, images=images)
    save_model(slim, output)
    before, after = static_stats(model), static_stats(slim)
    return {
        **_provenance(plan),
        "flops": [before.flops, after.flops],
        "params": [before.params, after.params],
        "groups_pruned": sum(1 for g in plan.groups if g.removed),
        "images": str(images) if images is not None else None,
        "reconstructed": plan.reconstruct and images is not None,
    }


def _provenance(plan: SlimPlan) -> dict[str, Any]:
    return {
        "method": plan.method,
        "ratio": plan.ratio,
        "scope": plan.scope,
        "round_to": plan.round_to,
        "removed_flops": round(plan.removed_flops, 4),
    }


def default_output(recipe: Recipe) -> Path:
    """Where ``edgesdk slim`` writes when no ``-o`` is given."""
    return Path("out") / f"{recipe.name}.slim.onnx"
