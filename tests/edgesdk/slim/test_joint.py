"""Joint refit: a cut layer's kept filters fitted together with its consumers."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.graph.io import run_onnxruntime, to_graph
from edgesdk.slim import joint
from edgesdk.slim.apply import apply_masks, finish
from edgesdk.slim.groups import analyze, prepare
from edgesdk.slim.joint import Block, Step, _Fit, _Samples, _weights, find_block
from edgesdk.slim.reconstruct import refit

F32 = np.float32
SIZE = 20  # enough positions that the fit generalises (at 12x12 x 8 images the depthwise block overfits)


def _chain(b, h, kind: str):
    """``h`` through the per-channel steps named by ``kind``."""
    if kind == "leaky":
        return b.op("LeakyRelu", [h], {"alpha": 0.1})
    if kind == "bn-relu":
        return b.op("Relu", [b.bn(h, 8)])
    if kind == "silu":
        return b.op("Mul", [h, b.op("Sigmoid", [h])])
    if kind == "clip":
        return b.op("Clip", [h, b.const(np.float32(0)), b.const(np.float32(6))])
    return h  # "none"


def _model(kit, kind: str = "leaky", consumers: int = 1, seed: int = 0, depthwise: bool = False):
    """conv ``a`` (3 -> 8) -> steps (-> a depthwise 3x3 conv, BN, ReLU) -> the consumers (8 -> 5)."""
    b = kit.Builder(shape=(1, 3, SIZE, SIZE), seed=seed)
    h = _chain(b, b.conv(b.x, 3, 8, name="a"), kind)
    if depthwise:
        h = b.op("Relu", [b.bn(b.conv(h, 8, 8, group=8, name="dw"), 8)])
    outs = [b.conv(h, 8, 5, k=3 if i == 0 else 1, name=f"consumer{i}") for i in range(consumers)]
    return b.model(*outs)


def _block(model, name: str = "a") -> Block | None:
    graph = prepare(to_graph(model))
    return find_block(graph, next(n for n in graph.nodes if n.name == name))


@pytest.mark.parametrize("kind", ["leaky", "bn-relu", "silu", "clip", "none"])
def test_block_found_through_per_channel_steps(kit, kind) -> None:
    block = _block(_model(kit, kind, consumers=2))
    assert block is not None
    assert [c.name for c in block.consumers] == ["consumer0", "consumer1"]
    steps = {
        "leaky": ["leaky"],
        "bn-relu": ["affine", "relu"],
        "silu": ["silu"],
        "clip": ["clip"],
        "none": [],
    }
    assert [s.kind for s in block.steps] == steps[kind]


def test_block_found_through_a_depthwise_conv(kit) -> None:
    block = _block(_model(kit, "leaky", consumers=2, depthwise=True))
    assert block is not None and block.depthwise is not None
    assert [s.kind for s in block.steps] == ["leaky"] and [s.kind for s in block.after] == ["affine", "relu"]
    assert [n.name for n in block.layers] == ["a", "dw", "consumer0", "consumer1"]


def test_no_block_through_an_add_a_concat_a_depthwise_conv_or_to_an_output(kit) -> None:
    b = kit.Builder(shape=(1, 8, 8, 8))
    a = b.op("Relu", [b.conv(b.x, 8, 8, name="a")])
    added = b.conv(b.op("Add", [a, b.x]), 8, 2, name="c1")
    c = b.op("Relu", [b.conv(b.x, 8, 4, name="c")])
    joined = b.conv(b.op("Concat", [c, b.x], {"axis": 1}), 12, 2, name="c2")
    d = b.op("Relu", [b.conv(b.x, 8, 8, name="d")])
    depthwise = b.conv(d, 8, 8, group=8, name="dw")
    e = b.conv(b.x, 8, 3, name="e")  # read by a conv and also a graph output
    model = b.model(added, joined, depthwise, e, b.conv(e, 3, 2, name="c3"))
    for name in ("a", "c", "d", "e"):
        assert _block(model, name) is None, name


@pytest.mark.parametrize(
    ("kind", "depthwise"),
    [("leaky", False), ("bn-relu", False), ("silu", False), ("clip", False), ("silu", True)],
)
def test_gradient_matches_finite_differences(kit, kind, depthwise) -> None:
    block = _block(_model(kit, kind, consumers=2, seed=3, depthwise=depthwise))
    assert block is not None and (block.depthwise is not None) == depthwise
    rng = np.random.default_rng(0)
    width, deep = 3 * 9 + 1, 9 if depthwise else 1
    samples = {}
    for consumer in block.consumers:
        taps = int(np.prod(consumer.inputs[1].values.shape[2:]))
        windows = rng.standard_normal((40, taps * deep, width))
        windows[..., -1] = 1.0
        valid = (rng.random((40, taps)) > 0.2).astype(np.float64)
        inner = (rng.random((40, taps, deep)) > 0.2).astype(np.float64) if depthwise else None
        samples[consumer.name] = _Samples(windows, valid, rng.standard_normal((40, 5)), inner)
    fit = _Fit(block, samples)
    params = {n.name: _weights(n).astype(np.float64) for n in block.layers}
    rows = {name: np.arange(40) for name in samples}
    _, grads = fit.loss(params, rows, grad=True)
    for name, p in params.items():
        for _ in range(6):
            index = tuple(int(rng.integers(0, s)) for s in p.shape)
            step = 1e-6
            p[index] += step
            up, _ = fit.loss(params, rows, grad=False)
            p[index] -= 2 * step
            down, _ = fit.loss(params, rows, grad=False)
            p[index] += step
            assert grads[name][index] == pytest.approx((up - down) / (2 * step), rel=1e-4, abs=1e-7)


def _feeds(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, SIZE, SIZE)).astype(F32)} for _ in range(n)]


def _error(model, slim, feeds) -> float:
    errors = []
    for feed in feeds:
        want, got = (run_onnxruntime(m, feed) for m in (model, slim))
        errors.extend(np.mean((got[k] - want[k]) ** 2) / np.var(want[k]) for k in want)
    return float(np.mean(errors))


def _pruned(model, iterations: int, kept=(0, 1, 2)):
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    gid = next(g.id for g in analysis.groups if g.sources == ["a"])
    apply_masks(graph, analysis, {gid: list(kept)})
    refit(graph, analysis, {gid: list(kept)}, model, _feeds(8), joint=iterations)
    return finish(graph, model)


@pytest.mark.parametrize(("kind", "depthwise"), [("leaky", False), ("silu", False), ("leaky", True)])
def test_joint_refit_beats_least_squares_on_unseen_images(kit, kind, depthwise) -> None:
    model = _model(kit, kind, consumers=2, depthwise=depthwise)
    test = _feeds(4, seed=9)
    least_squares = _error(model, _pruned(model, 0), test)
    both = _error(model, _pruned(model, 400), test)
    assert least_squares > 0.05  # three of eight channels cannot explain the rest
    assert both < 0.92 * least_squares  # measured 0.85-0.89 (0.95 with a ReLU6 that saturates)


def test_joint_refit_keeps_the_least_squares_weights_when_it_cannot_improve(kit, monkeypatch) -> None:
    model = _model(kit, "leaky")
    monkeypatch.setattr(joint, "JOINT_LR", 50.0)  # every step overshoots
    feed = _feeds(1, seed=9)[0]
    want = run_onnxruntime(_pruned(model, 0), feed)
    got = run_onnxruntime(_pruned(model, 20), feed)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value)


def test_joint_refit_with_the_consumers_own_outputs_cut(kit) -> None:
    """The consumer is itself cut (another group): only its kept outputs are fitted."""
    b = kit.Builder(shape=(1, 3, SIZE, SIZE), seed=4)
    h = b.op("LeakyRelu", [b.conv(b.x, 3, 8, name="a")], {"alpha": 0.1})
    y = b.op("Relu", [b.conv(h, 8, 6, name="consumer")])
    model = b.model(b.conv(y, 6, 2, k=1, name="head"))
    results = {}
    for iterations in (0, 300):
        graph = prepare(to_graph(model))
        analysis = analyze(graph)
        kept = {g.id: list(range(3)) for g in analysis.groups if g.sources in (["a"], ["consumer"])}
        assert len(kept) == 2
        apply_masks(graph, analysis, kept)
        refit(graph, analysis, kept, model, _feeds(8), joint=iterations)
        results[iterations] = _error(model, finish(graph, model), _feeds(4, seed=9))
    assert results[300] < results[0]


def test_steps_forward_values() -> None:
    x = np.array([[-2.0, 0.5, 7.0]])
    assert Step("leaky", 0.1).forward(x)[0].tolist() == [[-0.2, 0.5, 7.0]]
    assert Step("clip", low=0.0, high=6.0).forward(x)[0].tolist() == [[0.0, 0.5, 6.0]]
    silu, _ = Step("silu").forward(x)
    np.testing.assert_allclose(silu, x / (1 + np.exp(-x)))


def test_refit_reports_its_levels_and_joint_blocks(kit) -> None:
    model = _model(kit, "leaky")
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    gid = next(g.id for g in analysis.groups if g.sources == ["a"])
    apply_masks(graph, analysis, {gid: [0, 1, 2]})
    said: list[str] = []
    refit(graph, analysis, {gid: [0, 1, 2]}, model, _feeds(4), joint=10, progress=said.append)
    assert said == ["least-squares refit, level 1/1", "joint refit, block 1/1"]
