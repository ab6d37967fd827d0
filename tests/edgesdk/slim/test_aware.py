"""Activation-aware least squares: the activation lookup, the row weights, the weighted solve."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.graph.io import to_graph
from edgesdk.slim.aware import AWARE_FLOOR, Activation, activation_after, activation_weights, weighted_solve
from edgesdk.slim.groups import prepare

F32 = np.float32


def _consumer_with(kit, act: str, **attrs):
    """conv a (3 -> 6) -> Relu -> 3x3 consumer (6 -> 5, bias -4: mostly negative) -> ``act`` (output)."""
    b = kit.Builder(shape=(1, 3, 12, 12), seed=3)
    h = b.op("Relu", [b.conv(b.x, 3, 6, name="a")])
    w = b.const(b.rng.standard_normal((5, 6, 3, 3)).astype(F32))
    window = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    y = b.op("Conv", [h, w, b.const(np.full(5, -4.0, F32))], window, name="consumer")
    if act == "SiLU":
        out = b.op("Mul", [y, b.op("Sigmoid", [y])])
    elif act == "Clip":  # Relu6, opset 13: bounds as inputs
        out = b.op("Clip", [y, b.const(np.array(0.0, F32)), b.const(np.array(6.0, F32))])
    elif act == "PRelu":
        out = b.op("PRelu", [y, b.const(np.full((5, 1, 1), 0.25, F32))])
    else:
        out = b.op(act, [y], attrs)
    return b.model(out)


def _consumer_node(model):
    graph = prepare(to_graph(model))
    return next(n for n in graph.nodes if n.name == "consumer")


def test_activation_lookup_finds_what_alone_reads_the_output(kit) -> None:
    assert activation_after(_consumer_node(_consumer_with(kit, "Relu"))) == Activation("relu")
    leaky = activation_after(_consumer_node(_consumer_with(kit, "LeakyRelu", alpha=0.1)))
    assert leaky is not None and leaky.kind == "leaky" and leaky.slope == pytest.approx(0.1)
    clip = activation_after(_consumer_node(_consumer_with(kit, "Clip")))
    assert clip is not None and (clip.kind, clip.low, clip.high) == ("clip", 0.0, 6.0)
    assert activation_after(_consumer_node(_consumer_with(kit, "SiLU"))) is None  # left to the plain fit
    prelu = activation_after(_consumer_node(_consumer_with(kit, "PRelu")))
    assert prelu is not None and prelu.kind == "prelu" and np.allclose(prelu.slope, 0.25)
    assert activation_after(_consumer_node(_consumer_with(kit, "Sigmoid"))) is None


def test_activation_lookup_refuses_a_shared_output(kit) -> None:
    b = kit.Builder(shape=(1, 3, 8, 8))
    y = b.conv(b.x, 3, 4, name="consumer")
    model = b.model(b.op("Relu", [y]), b.op("Abs", [y]))
    assert activation_after(_consumer_node(model)) is None
    relu = _consumer_node(_consumer_with(kit, "Relu"))
    assert activation_after(relu, graph_output=True) is None  # the output itself is also read


def test_weights_zero_where_both_are_flat_and_targets_clipped_where_prediction_is_linear() -> None:
    target = np.array([[-1.0, -1.0, 2.0, -1.0, 7.0]]).T.repeat(2, axis=1)
    pred = np.array([[-2.0, 0.5, -0.1, -1.0, 8.0]]).T.repeat(2, axis=1)
    t, w = activation_weights(Activation("relu"), target, pred)
    np.testing.assert_allclose(w[:, 0], [AWARE_FLOOR, 1, 1, AWARE_FLOOR, 1])
    np.testing.assert_allclose(t[:, 0], [-1, 0, 2, -1, 7])  # prediction linear, target flat: 0
    t, w = activation_weights(Activation("leaky", 0.1), target, pred)
    np.testing.assert_allclose(w[:, 0], [0.01, 1, 1, 0.01, 1])
    np.testing.assert_allclose(t[:, 0], [-1, -0.1, 2, -1, 7])
    _, w = activation_weights(Activation("prelu", np.array([0.5, 0.2])), target, pred)
    np.testing.assert_allclose(w[0], [0.25, 0.04])
    t, w = activation_weights(Activation("clip", 0.0, 0.0, 6.0), target, pred)
    np.testing.assert_allclose(w[:, 0], [AWARE_FLOOR, 1, 1, AWARE_FLOOR, AWARE_FLOOR])
    np.testing.assert_allclose(t[:, 0], [-1, 0, 2, -1, 7])


def test_weighted_solve_matches_a_per_channel_lstsq() -> None:
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.standard_normal((200, 6)), np.ones((200, 1))], axis=1)
    y, w = rng.standard_normal((200, 3)), rng.uniform(0, 1, (200, 3))
    got = weighted_solve(rows, y, w)
    for o in range(3):
        s = np.sqrt(w[:, o])
        want = np.linalg.lstsq(rows * s[:, None], y[:, o] * s, rcond=None)[0]
        np.testing.assert_allclose(got[:, o], want, atol=1e-3)
