"""Empirical bias correction: a quantised conv's channel means match the float conv's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph.io import onnxruntime_runner, to_model
from edgesdk.quant.biascorr import correct_biases, fake_quant_weight
from edgesdk.quant.calibrate import qdq_model


def _model(rng: np.random.Generator, bias: bool) -> object:
    x = gs.Variable("x", np.float32, [2, 3, 9, 9])
    y = gs.Variable("y", np.float32, None)
    # few weights per channel and one large weight set the scale: rounding errors do not average out
    w = rng.uniform(-0.3, 0.3, (4, 3, 3, 3)).astype(np.float32)
    w[:, 0, 0, 0] = 5.0
    inputs = [x, gs.Constant("w", w)] + ([gs.Constant("b", np.ones(4, np.float32))] if bias else [])
    conv = gs.Node("Conv", "conv", {"pads": [1, 1, 1, 1], "strides": [2, 2]}, inputs, [y])
    return to_model(gs.Graph([conv], [x], [y], opset=13))


def _means(model: object, feeds: list[np.ndarray]) -> np.ndarray:
    run = onnxruntime_runner(model)  # type: ignore[arg-type]
    return np.mean([run({"x": f})["y"].mean(axis=(0, 2, 3)) for f in feeds], axis=0)


def test_fake_quant_weight_matches_onnxruntime_qdq() -> None:
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    weight[0, 0, 0, 0] = 0.5 * 7 / 127  # exactly half a step: ONNX rounds half to even
    scale = (np.abs(weight).reshape(4, -1).max(axis=1) / 127).astype(np.float32)
    scale[0] = 7 / 127
    w = gs.Variable("w", np.float32, list(weight.shape))
    q, out = gs.Variable("q", np.int8, None), gs.Variable("out", np.float32, None)
    s, z = gs.Constant("s", scale), gs.Constant("z", np.zeros(4, np.int8))
    nodes = [
        gs.Node("QuantizeLinear", "Q", {"axis": 0}, [w, s, z], [q]),
        gs.Node("DequantizeLinear", "DQ", {"axis": 0}, [q, s, z], [out]),
    ]
    run = onnxruntime_runner(to_model(gs.Graph(nodes, [w], [out], opset=13)))
    assert np.array_equal(run({"w": weight})["out"], fake_quant_weight(weight, scale, 0))


def test_channel_means_unbiased(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    feeds = [rng.uniform(0, 1, (2, 3, 9, 9)).astype(np.float32) for _ in range(3)]
    for bias in (True, False):
        model = _model(rng, bias)
        qdq, _plan = qdq_model(model, {"x": 1.0})  # type: ignore[arg-type]
        want, before = _means(model, feeds), _means(qdq, feeds)
        result = correct_biases(qdq, ({"x": f} for f in feeds), total=3)
        after = _means(result.model, feeds)
        assert result.images == 3 and list(result.shifts) == ["conv"]
        # int8 weights shift the means; the corrected biases take back all but the input's
        # own rounding (x's Q/DQ, not corrected)
        assert np.abs(before - want).max() > 2e-3
        assert np.abs(after - want).max() < 0.1 * np.abs(before - want).max()
        np.testing.assert_allclose(before - after, result.shifts["conv"], atol=2e-6)
        assert result.to_json()["layers"] == 1
        ops = [n.op_type for n in result.model.graph.node]
        assert ops.count("QuantizeLinear") == 2 and not any(
            "probe/" in n.name for n in result.model.graph.node
        )
