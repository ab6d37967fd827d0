"""Least-squares reconstruction recovers what the kept channels can explain."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgesdk.graph.io import run_onnxruntime, to_graph
from edgesdk.slim.apply import apply_masks, finish
from edgesdk.slim.groups import analyze, prepare
from edgesdk.slim.reconstruct import refit
from tests.edgesdk.slim.test_aware import _consumer_with

F32 = np.float32


def _redundant_model(kit, relu: bool = True):
    """conv a: channel 3 = 2 x channel 1 (same filter and bias, doubled), then ReLU and a 3x3 consumer."""
    b = kit.Builder(shape=(1, 3, 12, 12))
    w = b.rng.standard_normal((4, 3, 3, 3)).astype(F32)
    bias = b.rng.standard_normal(4).astype(F32)
    w[3], bias[3] = 2 * w[1], 2 * bias[1]
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    h = b.op("Conv", [b.x, b.const(w), b.const(bias)], attrs, name="a")
    if relu:
        h = b.op("Relu", [h])
    out = b.conv(h, 4, 5, name="consumer")
    return b.model(out)


def _feeds(n: int, seed: int = 0, size: int = 12):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, size, size)).astype(F32)} for _ in range(n)]


def _prune(model, refit_with=None):
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    gid = next(g.id for g in analysis.groups if g.sources == ["a"])
    kept = {gid: [0, 1, 2]}
    apply_masks(graph, analysis, kept)
    count = refit(graph, analysis, kept, model, refit_with) if refit_with else 0
    return finish(graph, model), count


def test_redundant_channel_is_recovered_exactly(kit) -> None:
    model = _redundant_model(kit)
    feeds = _feeds(4)
    plain, _ = _prune(model)
    refitted, count = _prune(model, feeds)
    assert count == 1
    test = _feeds(2, seed=9)
    for feed in test:
        want = next(iter(run_onnxruntime(model, feed).values()))
        lost = next(iter(run_onnxruntime(plain, feed).values()))
        got = next(iter(run_onnxruntime(refitted, feed).values()))
        assert np.abs(lost - want).max() > 0.5  # dropping the channel really hurts
        np.testing.assert_allclose(got, want, atol=2e-3 * np.abs(want).max())


def test_refit_adds_a_bias_where_there_was_none(kit) -> None:
    b = kit.Builder(shape=(1, 3, 8, 8))
    h = b.op("Relu", [b.conv(b.x, 3, 4, name="a")])
    w = b.const(b.rng.standard_normal((2, 4, 1, 1)).astype(F32))
    model = b.model(b.op("Conv", [h, w], {"kernel_shape": [1, 1]}, name="consumer"))
    refitted, count = _prune(model, _feeds(3, size=8))
    consumer = next(n for n in refitted.graph.node if n.name == "consumer")
    assert count == 1 and len(consumer.input) == 3


def _output(model, feed) -> np.ndarray:
    return next(iter(run_onnxruntime(model, feed).values()))


def test_refit_samples_enough_positions_to_generalise(kit, monkeypatch) -> None:
    """A channel the kept ones cannot explain: on images it did not see, the refit from sampled
    positions is within 10 % of a fit on every position of the same images (with 3 positions per
    unknown it was ~1.3x: it followed its sample)."""
    from edgesdk.slim import reconstruct

    b = kit.Builder(shape=(1, 3, 32, 32))
    h = b.op("Relu", [b.conv(b.x, 3, 8, name="a")])
    model = b.model(b.conv(h, 8, 6, name="consumer"))
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    gid = next(g.id for g in analysis.groups if g.sources == ["a"])
    kept = {gid: [0, 1, 2, 3, 4, 5]}
    train, test = _feeds(8, size=32), _feeds(8, seed=7, size=32)

    def held_out_error() -> float:
        g = prepare(to_graph(model))
        apply_masks(g, analysis, kept)
        refit(g, analysis, kept, model, train)
        slim = finish(g, model)
        return sum(float(np.mean((_output(slim, f) - _output(model, f)) ** 2)) for f in test)

    sampled = held_out_error()
    monkeypatch.setattr(reconstruct, "ROWS_PER_IMAGE", (32 * 32, 32 * 32))  # every position
    every = held_out_error()
    assert every > 0  # the removed channels are not explained exactly
    assert sampled < 1.1 * every


# --------------------------------------------------------------------------- activation-aware fit


def _post_activation_error(model, slim, feeds) -> float:
    errors = []
    for feed in feeds:
        want = next(iter(run_onnxruntime(model, feed).values()))
        got = next(iter(run_onnxruntime(slim, feed).values()))
        errors.append(np.mean((got - want) ** 2))
    return float(np.mean(errors))


@pytest.mark.parametrize("act", ["Relu", "LeakyRelu", "Clip"])
def test_aware_fit_beats_plain_after_the_activation(kit, act) -> None:
    model = _consumer_with(kit, act, **({"alpha": 0.1} if act == "LeakyRelu" else {}))
    feeds, test = _feeds(8), _feeds(4, seed=9)
    results = {}
    for aware in (False, True):
        graph = prepare(to_graph(model))
        analysis = analyze(graph)
        gid = next(g.id for g in analysis.groups if g.sources == ["a"])
        apply_masks(graph, analysis, {gid: [0, 1, 2]})
        assert refit(graph, analysis, {gid: [0, 1, 2]}, model, feeds, activation_aware=aware) == 1
        slim = finish(graph, model)
        results[aware] = (
            _post_activation_error(model, slim, feeds),
            _post_activation_error(model, slim, test),
        )
    (plain_fit, plain_test), (aware_fit, aware_test) = results[False], results[True]
    assert aware_fit < 0.99 * plain_fit
    assert aware_test < plain_test


def test_aware_fit_with_the_consumers_own_outputs_cut_and_a_per_channel_prelu(kit, caplog) -> None:
    b = kit.Builder(shape=(1, 3, 12, 12), seed=4)
    h = b.op("Relu", [b.conv(b.x, 3, 6, name="a")])
    slope = b.const(np.linspace(0.1, 0.5, 5).astype(F32).reshape(5, 1, 1))
    y = b.op("PRelu", [b.conv(h, 6, 5, name="consumer"), slope])
    model = b.model(b.conv(y, 5, 2, k=1, name="head"))
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    kept = {g.id: list(range(g.size // 2 + 1)) for g in analysis.groups if g.sources in (["a"], ["consumer"])}
    assert len(kept) == 2
    apply_masks(graph, analysis, kept)
    with caplog.at_level(logging.INFO, logger="edgesdk.slim"):
        assert refit(graph, analysis, kept, model, _feeds(6), activation_aware=True) == 2
    assert "consumer: activation-aware fit (prelu), " in caplog.text
    slim = finish(graph, model)
    feed = _feeds(1, seed=5)[0]
    assert np.isfinite(next(iter(run_onnxruntime(slim, feed).values()))).all()
