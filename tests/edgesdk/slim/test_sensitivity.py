"""Sensitivity-aware allocation: output damage of single-group trials, the refit, the per-channel scores."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.graph.io import to_graph
from edgesdk.slim.criteria import ScoreContext, criterion
from edgesdk.slim.sensitivity import UNREACHED, Trials, counts, sensitivity_scores

F32 = np.float32


def _redundant_model(kit):
    """x -> conv a (8 ch: 4 filters, each twice) -> Relu -> conv c;  x -> conv b (8 ch) -> Relu -> conv d."""
    b = kit.Builder(shape=(1, 3, 8, 8), seed=1)
    a = b.conv(b.x, 3, 8, k=1, name="a")
    weight = b.nodes[-1].inputs[1].values
    weight[4:] = weight[:4]
    b.nodes[-1].inputs[2].values[4:] = b.nodes[-1].inputs[2].values[:4]
    c = b.conv(b.op("Relu", [a]), 8, 4, k=1, name="c")
    d = b.conv(b.op("Relu", [b.conv(b.x, 3, 8, k=1, name="bconv")]), 8, 4, k=1, name="d")
    return b.model(b.op("Add", [c, d]))


def _context(kit, model, **extras):
    graph, analysis = kit.analysis_of(model)
    feeds = [kit.random_feed(model, seed=s) for s in range(3)]
    return ScoreContext(graph, analysis, extras={"feeds": feeds, "round_to": 1, **extras})


def _group(ctx, source):
    return next(g for g in ctx.analysis.groups if g.sources == [source])


def test_counts_follow_round_to() -> None:
    assert counts(32, 8) == [8, 16, 24]
    assert counts(16, 8) == [8]
    assert counts(64, 1) == [8, 16, 24, 32, 40, 48]
    assert counts(4, 8) == [1, 2, 3]  # a group smaller than round_to is not rounded


def test_no_removal_no_damage_and_duplicates_are_free_with_the_refit(kit) -> None:
    ctx = _context(kit, _redundant_model(kit))
    trials = Trials(ctx)
    a, other = _group(ctx, "a"), _group(ctx, "bconv")
    assert trials.damage(a, np.arange(8)) == pytest.approx(0.0, abs=1e-9)
    assert trials.damage(a, np.arange(4)) < 1e-6  # the copies are refitted onto the originals exactly
    assert trials.damage(other, np.arange(4)) > 1e-3
    consumer = trials.consumers["c"]
    consumer.refit = False  # without the refit, dropping the copies halves what c sees
    trials.memo.clear()
    assert trials.damage(a, np.arange(4)) > 1e-3
    assert trials.flops_saved(a, np.arange(4)) == 2 * 4 * 64 * (3 + 4)  # a's outputs and c's inputs


def _two_output_model(kit):
    """x -> conv a (8 ch) -> Relu -> conv c (output 1);  x -> conv b (8 ch) -> Relu -> conv d (output 2)."""
    b = kit.Builder(shape=(1, 3, 8, 8), seed=2)
    c = b.conv(b.op("Relu", [b.conv(b.x, 3, 8, k=1, name="a")]), 8, 4, k=1, name="c")
    d = b.conv(b.op("Relu", [b.conv(b.x, 3, 8, k=1, name="bconv")]), 8, 3, k=1, name="d")
    return b.model(c, d)


def _tensor_trials(kit, model, feeds):
    graph, analysis = kit.analysis_of(model)
    extras = {"feeds": feeds, "round_to": 1, "damage_images": len(feeds)}
    return Trials(ScoreContext(graph, analysis, extras=extras))


def _perturbed(trials):
    """The trials' base weights with consumer c's weights halved and d's bias shifted."""
    c, d = trials.consumers["c"], trials.consumers["d"]
    return {**trials.base, **c.values(0.5 * c.weight, c.bias), **d.values(d.weight, d.bias + 0.3)}


def test_tensor_damage_is_the_mean_over_images_and_outputs(kit) -> None:
    """Without a recipe the damage is the mean over (image, output) pairs of the per-attribute
    error (channels of an NCHW output, each over how much it varies across the damage images)."""
    model = _two_output_model(kit)
    feeds = [kit.random_feed(model, seed=s) for s in range(3)]
    trials = _tensor_trials(kit, model, feeds)
    feed = _perturbed(trials)
    assert len(trials.reference) == 3 and all(len(r) == 2 for r in trials.reference)
    errors = []
    for images, reference in zip(feeds, trials.reference):
        outputs = trials.run({**images, **feed})
        for name, want in reference.items():
            spread = np.stack([r[name] for r in trials.reference]).astype(np.float64).var(axis=0)
            scale = spread.mean(axis=(0, 2, 3))  # per channel: [1, C, H, W] -> [C]
            scale = np.maximum(scale, 1e-3 * scale.max() + 1e-12)
            per_channel = np.mean((outputs[name].astype(np.float64) - want) ** 2, axis=(0, 2, 3))
            errors.append(float(np.mean(per_channel / scale)))
    assert len(errors) == 6 and min(errors) > 1e-3
    assert trials._compare(feed) == pytest.approx(float(np.mean(errors)), rel=1e-6)


def test_tensor_damage_does_not_depend_on_the_number_of_damage_images(kit) -> None:
    """The same two images scored twice over (same scales, same errors) give the same damage."""
    model = _two_output_model(kit)
    feeds = [kit.random_feed(model, seed=s) for s in range(2)]
    once, twice = _tensor_trials(kit, model, feeds), _tensor_trials(kit, model, feeds + feeds)
    assert len(twice.eval_feeds) == 4
    damage = once._compare(_perturbed(once))
    assert damage > 1e-3
    assert twice._compare(_perturbed(twice)) == pytest.approx(damage, rel=1e-6)


def test_tried_scores_stay_below_the_untried_ones_however_large_the_damage() -> None:
    from edgesdk.slim.sensitivity import _bounded

    levels = np.array([0.0, 1e-3, 1.0, 4e2, 1e6, 1e9, 1e15])  # damage per GFLOP; 1e6+ on tiny graphs
    bounded = np.array([_bounded(v) for v in levels])
    assert np.all(np.diff(bounded) > 0) and bounded.max() < UNREACHED / 2
    assert bounded[3] == pytest.approx(4e2, rel=1e-3)  # real models' range (<= ~1e3): ~unchanged


def test_scores_rank_harmless_channels_first_and_grow_along_the_order(kit) -> None:
    ctx = _context(kit, _redundant_model(kit))
    order = np.array([8, 7, 6, 5, 1, 2, 3, 4], dtype=np.float64)  # copies (4..7) first
    a = sensitivity_scores(_group(ctx, "a"), ctx, order)
    b = sensitivity_scores(_group(ctx, "bconv"), ctx, np.arange(8, dtype=np.float64))
    removal = np.argsort(order, kind="stable")
    assert np.all(np.diff(a[removal]) > 0)
    assert a[4:].max() < b[:4].min()  # dropping a copy costs less than any real channel
    assert a.max() > UNREACHED and b.max() > UNREACHED  # 7/8 of a group is never tried


@pytest.mark.parametrize("method", ["thinet", "lasso"])
def test_layer_error_allocation_keeps_the_criterion_scores(kit, method) -> None:
    model = _redundant_model(kit)
    plain = _context(kit, model, allocation="layer-error")
    measured = _context(kit, model)
    group = _group(plain, "a")
    raw = criterion(method).fn(group, plain)
    scored = criterion(method).fn(_group(measured, "a"), measured)
    assert raw.max() < UNREACHED <= scored.max()
    np.testing.assert_array_equal(np.argsort(raw[:4]), np.argsort(scored[:4]))  # same order where tried


def test_real_model_plan_prunes_where_the_detections_suffer_least(exported, sample_images) -> None:
    """yunet, two images, one trial per group: the measured-damage plan reaches the ratio and its
    refitted model's detections stay closer to the original's than the per-layer-error plan's at
    the same FLOPs (the raw output tensors need not: the plan spends its error where no face is)."""
    from pathlib import Path

    from edgesdk.graph.io import run_onnxruntime
    from edgesdk.recipe import load_recipe
    from edgesdk.slim.activations import calibration_feeds
    from edgesdk.slim.apply import apply_plan
    from edgesdk.slim.damage import Detector, disagreement
    from edgesdk.slim.plan import make_plan
    from edgesdk.slim.reconstruct import reconstructor

    recipe = load_recipe("yunet")
    original = exported("yunet")
    feeds, _ = calibration_feeds(recipe, original, Path(sample_images["bus"]).parent, 2)
    assert len(feeds) == 2
    detect = Detector(recipe)
    want = [detect(run_onnxruntime(original, feed))[0] for feed in feeds]
    assert all(len(ref) > 0 for ref in want)  # faces in both images
    errors = {}
    for allocation in ("sensitivity", "layer-error"):
        extras = {"feeds": feeds, "allocation": allocation, "fractions": (0.5,), "recipe": recipe}
        plan = make_plan(original, method="thinet", ratio=0.1, extras=extras)
        assert 0.1 <= plan.removed_flops < 0.12 and plan.reconstruct
        slim = apply_plan(original, plan, reconstruct=reconstructor(original, feeds))
        got = [detect(run_onnxruntime(slim, feed))[0] for feed in feeds]
        errors[allocation] = float(np.mean([disagreement(r, g, detect.threshold) for r, g in zip(want, got)]))
    assert errors["sensitivity"] < errors["layer-error"]


def test_detection_damage_adds_the_tensor_damage_times_its_share(exported, sample_images) -> None:
    """ultraface, one image: damage = detection part + ``extras["tensor_share"]`` x the tensor damage
    (the recipe-less damage of the same trial)."""
    from pathlib import Path

    from edgesdk.recipe import load_recipe
    from edgesdk.slim.activations import calibration_feeds
    from edgesdk.slim.groups import analyze, prepare

    recipe = load_recipe("ultraface-rfb320")
    model = exported("ultraface-rfb320")
    feeds, _ = calibration_feeds(recipe, model, Path(sample_images["bus"]).parent, 1)
    graph = prepare(to_graph(model))
    ctx = ScoreContext(graph, analyze(graph), extras={"feeds": feeds, "recipe": recipe})
    trials = Trials(ctx)
    for consumer in trials.consumers.values():
        consumer.refit = False  # one image: the refit would make the tensor damage ~0
    group = max(ctx.analysis.prunable(), key=lambda g: g.size)
    kept = np.arange(group.size // 2)
    damage = {}
    for share in (0.0, 1.0, 3.0):
        ctx.extras["tensor_share"] = share
        trials.memo.clear()
        damage[share] = trials.damage(group, kept)
    trials.detector, trials.memo = None, {}
    tensor = trials.damage(group, kept)
    assert tensor > 1e-3
    assert damage[1.0] - damage[0.0] == pytest.approx(tensor, rel=1e-6)
    assert damage[3.0] - damage[0.0] == pytest.approx(3 * tensor, rel=1e-6)


def test_detection_disagreement() -> None:
    from edgeagent.vision.types import Detections
    from edgesdk.slim.damage import disagreement

    def dets(boxes, scores, classes):
        return Detections(
            np.array(boxes, F32).reshape(-1, 4), np.array(scores, F32), np.array(classes, np.int64)
        )

    ref = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])
    assert disagreement(ref, ref, 0.5) == pytest.approx(0.0)
    lost = dets([[0, 0, 10, 10]], [0.9], [0])
    assert disagreement(ref, lost, 0.5) == pytest.approx(0.5)  # one of two references gone
    weaker = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.45, 0.8], [0, 1])
    assert disagreement(ref, weaker, 0.5) == pytest.approx(0.25)  # half the score on one of two
    wrong_class = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 0])
    assert disagreement(ref, wrong_class, 0.5) == pytest.approx(1.0)  # one missed + one new
    assert disagreement(dets([], [], []), ref, 0.5) == 2.0  # nothing expected, two confident new


def test_lower_hull_skips_steps_that_save_little_for_their_damage() -> None:
    from edgesdk.slim.sensitivity import lower_hull

    # step 1 saves little for much damage, step 2 makes up for it
    points = [(0.0, 0.0), (1.0, 5.0), (4.0, 4.0), (6.0, 7.0), (8.0, 11.0)]
    assert lower_hull(points) == [0, 2, 3, 4]
    assert lower_hull([(0.0, 0.0), (2.0, 1.0), (4.0, 2.0), (5.0, 4.0)]) == [0, 2, 3]  # on the chord: dropped
    assert lower_hull([(0.0, 0.0)]) == [0]


def test_hull_marginals_are_never_above_the_running_max(kit) -> None:
    """Both give non-decreasing scores along the order; the hull's slopes are never higher."""
    model = _redundant_model(kit)
    order = np.arange(8, dtype=np.float64)
    hull = _context(kit, model, marginal="hull")
    running = _context(kit, model)  # FLOPs target: running max by default
    a = sensitivity_scores(_group(hull, "bconv"), hull, order)
    b = sensitivity_scores(_group(running, "bconv"), running, order)
    assert np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)
    tried = a < UNREACHED
    assert tried.any() and np.all(a[tried] <= b[tried] + 1e-9)
