"""Statistics matching: the pruned model's conv outputs get the original's per-channel mean and spread."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.graph.io import run_onnxruntime, to_graph
from edgesdk.slim.activations import Probe
from edgesdk.slim.apply import apply_masks, finish
from edgesdk.slim.groups import analyze, prepare
from edgesdk.slim.statmatch import match_statistics

F32 = np.float32


def _model(kit):
    """x -> conv a (6) -> Relu -> conv b (5) -> Relu -> conv c (3, output); x -> conv s (2) added to c."""
    b = kit.Builder(shape=(1, 3, 10, 10), seed=3)
    h = b.op("Relu", [b.conv(b.x, 3, 6, name="a")])
    h = b.op("Relu", [b.conv(h, 6, 5, name="b")])
    side = b.conv(b.x, 3, 3, k=1, name="s")
    return b.model(b.op("Add", [b.conv(h, 5, 3, name="c"), side]))


def _feeds(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 10, 10)).astype(F32)} for _ in range(2 * n)]


def _moments(graph, names, feeds):
    found = {}
    for outputs in Probe(graph, names).run(feeds):
        for name in names:
            y = np.moveaxis(outputs[name], 1, 0).reshape(outputs[name].shape[1], -1)
            found.setdefault(name, []).append(y)
    return {k: (np.concatenate(v, 1).mean(1), np.concatenate(v, 1).std(1)) for k, v in found.items()}


def _pruned(model, mode, feeds):
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    gid = next(g.id for g in analysis.groups if g.sources == ["a"])
    kept = {gid: [0, 2, 5]}
    apply_masks(graph, analysis, kept)
    count = match_statistics(graph, model, analysis.keep_masks(kept), feeds, mode=mode) if mode else 0
    return graph, count


def _outputs(graph, names):
    return {n.name: n.outputs[0].name for n in graph.nodes if n.name in names}


@pytest.mark.parametrize("mode", ["affine", "mean"])
def test_downstream_convs_get_the_original_statistics(kit, mode) -> None:
    model = _model(kit)
    feeds = _feeds(3)
    original = prepare(to_graph(model))
    names = _outputs(original, {"b", "c"})
    want = _moments(original, list(names.values()), feeds)
    plain, _ = _pruned(model, None, feeds)
    before = _moments(plain, list(names.values()), feeds)
    graph, count = _pruned(model, mode, feeds)
    got = _moments(graph, list(names.values()), feeds)
    assert count == 2  # b reads the cut channels, c reads b; a and s are untouched
    for tensor in names.values():
        assert np.abs(before[tensor][0] - want[tensor][0]).max() > 0.1  # the cut really moved them
        np.testing.assert_allclose(
            got[tensor][0], want[tensor][0], atol=1e-3 * (1 + np.abs(want[tensor][0]).max())
        )
    spread = names["b"]
    if mode == "affine":
        np.testing.assert_allclose(got[spread][1], want[spread][1], rtol=1e-3)
    else:
        np.testing.assert_allclose(got[spread][1], before[spread][1], rtol=1e-3)


def test_result_is_a_valid_model_with_the_same_outputs_shapes(kit) -> None:
    model = _model(kit)
    feeds = _feeds(2)
    graph, _ = _pruned(model, "affine", feeds)
    slim = finish(graph, model)
    feed = _feeds(1, seed=7)[0]
    want, got = run_onnxruntime(model, feed), run_onnxruntime(slim, feed)
    assert {k: v.shape for k, v in want.items()} == {k: v.shape for k, v in got.items()}


def test_nothing_cut_nothing_changed(kit) -> None:
    model = _model(kit)
    graph = prepare(to_graph(model))
    assert match_statistics(graph, model, {}, _feeds(1)) == 0


@pytest.mark.parametrize(
    ("layers", "changed"), [("refitted", {"b"}), ("downstream", {"b", "c"}), ("unfitted", {"c"})]
)
def test_reconstructor_matches_the_chosen_layers(kit, layers, changed) -> None:
    from edgesdk.slim.reconstruct import reconstructor

    model = _model(kit)
    feeds = _feeds(3)
    graphs = {}
    for match in (None, "affine"):
        graph = prepare(to_graph(model))
        analysis = analyze(graph)
        kept = {next(g.id for g in analysis.groups if g.sources == ["a"]): [0, 2, 5]}
        apply_masks(graph, analysis, kept)
        reconstructor(model, feeds, match=match, match_layers=layers)(graph, analysis, kept)
        graphs[match] = {n.name: np.asarray(n.inputs[1].values) for n in graph.nodes if n.op == "Conv"}
    differ = {name for name, w in graphs[None].items() if not np.allclose(w, graphs["affine"][name])}
    assert differ == changed


def test_real_model_refitted_layers_get_the_original_spread(exported, sample_images) -> None:
    """yunet, l1 plan at 20 %, refit on one image: the least-squares refit shrinks the spread of
    the layers it fits; matching brings each channel's mean and std back to the original's."""
    from pathlib import Path

    from edgesdk.recipe import load_recipe
    from edgesdk.slim.activations import calibration_feeds
    from edgesdk.slim.apply import apply_plan
    from edgesdk.slim.plan import make_plan
    from edgesdk.slim.reconstruct import reconstructor, refitted_names

    original = exported("yunet")
    feeds, _ = calibration_feeds(load_recipe("yunet"), original, Path(sample_images["bus"]).parent, 1)
    plan = make_plan(original, method="l1", ratio=0.2)
    graph = prepare(to_graph(original))
    analysis = analyze(graph)
    fitted = sorted(refitted_names(analysis, plan.kept()) & {n.name for n in graph.nodes if n.op == "Conv"})
    tensors = [n.outputs[0].name for n in graph.nodes if n.name in fitted]
    want = _moments(graph, tensors, feeds)
    masks = analysis.keep_masks(plan.kept())
    spreads = {}
    for match in (None, "affine"):
        slim = apply_plan(original, plan, reconstruct=reconstructor(original, feeds, match=match))
        spreads[match] = _moments(prepare(to_graph(slim)), tensors, feeds)
    for tensor in tensors:
        keep = masks.get(tensor, np.ones(len(want[tensor][1]), bool))
        target = want[tensor][1][keep]
        np.testing.assert_allclose(spreads["affine"][tensor][1], target, rtol=2e-2, atol=1e-4)
    shrunk = np.mean(
        [np.mean(spreads[None][t][1] / (want[t][1][masks.get(t, slice(None))] + 1e-6)) for t in tensors]
    )
    assert shrunk < 0.99  # the plain refit really left the spread smaller
