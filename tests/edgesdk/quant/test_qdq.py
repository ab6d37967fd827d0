"""Q/DQ placement on a small graph with a residual Add and a decoder tail; runs on onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import CalibrationError, GraphError
from edgesdk.graph.io import run_onnxruntime, to_model
from edgesdk.quant.qdq import apply_qdq, decoder_tail, plan_qdq


def _graph(opset: int = 13) -> gs.Graph:
    """x -> conv1 -> relu ; conv2(relu) + relu -> add -> conv3 -> sigmoid + relu2 -> tail_add."""
    rng = np.random.default_rng(0)

    def var(name: str, channels: int) -> gs.Variable:
        return gs.Variable(name, np.float32, [1, channels, 8, 8])

    x, c1, r1, c2, s, c3, sg, r3, y = (
        var(n, c)
        for n, c in [
            ("x", 3),
            ("c1", 4),
            ("r1", 4),
            ("c2", 4),
            ("s", 4),
            ("c3", 2),
            ("sg", 2),
            ("r3", 2),
            ("y", 2),
        ]
    )
    w1 = gs.Constant("w1", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    w2 = gs.Constant("w2", rng.standard_normal((4, 4, 1, 1)).astype(np.float32))
    w3 = gs.Constant(
        "w3",
        rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
        * np.array([1, 0], np.float32).reshape(2, 1, 1, 1),
    )
    nodes = [
        gs.Node("Conv", "conv1", {"pads": [1, 1, 1, 1]}, [x, w1], [c1]),
        gs.Node("Relu", "relu1", {}, [c1], [r1]),
        gs.Node("Conv", "conv2", {}, [r1, w2], [c2]),
        gs.Node("Add", "residual", {}, [c2, r1], [s]),
        gs.Node("Conv", "conv3", {}, [s, w3], [c3]),
        gs.Node("Sigmoid", "sigmoid", {}, [c3], [sg]),
        gs.Node("Relu", "relu3", {}, [c3], [r3]),
        gs.Node("Add", "tail_add", {}, [sg, r3], [y]),
    ]
    return gs.Graph(nodes, [x], [y], opset=opset)


THRESHOLDS = {"x": 1.0, "c1": 4.0, "r1": 3.0, "c2": 5.0, "s": 6.0, "c3": 4.0, "sg": 1.0, "r3": 3.0, "y": 4.0}


def _by_name(plan_json: dict) -> dict[str, list[str]]:
    return {name: entry["consumers"] for name, entry in plan_json["activations"].items()}


def test_placement() -> None:
    graph = _graph()
    assert {n.name for n in graph.nodes if id(n) in decoder_tail(graph.toposort())} == {
        "sigmoid",
        "relu3",
        "tail_add",
    }
    plan = plan_qdq(graph, THRESHOLDS)
    data = plan.to_json()
    # conv inputs; the residual Add gets Q/DQ only on r1 (c2 comes straight from a Conv)
    assert _by_name(data) == {"x": ["conv1"], "r1": ["conv2", "residual"], "s": ["conv3"]}
    assert data["activations"]["r1"]["scale"] == pytest.approx(3.0 / 127)
    assert [(w["node"], w["axis"]) for w in data["weights"]] == [("conv1", 0), ("conv2", 0), ("conv3", 0)]
    assert data["kept_float"] == {"tail_add": "decoder tail"}


def test_applied_model_runs_and_stays_close() -> None:
    graph = _graph()
    reference = to_model(graph.copy())
    qdq = apply_qdq(graph, plan_qdq(graph, THRESHOLDS))
    ops = [n.op for n in qdq.nodes]
    assert ops.count("QuantizeLinear") == 3 + 3 and ops.count("DequantizeLinear") == 6
    # one shared Q/DQ pair for r1: conv2 and the Add read the same dequantised tensor
    conv2 = next(n for n in qdq.nodes if n.name == "conv2")
    residual = next(n for n in qdq.nodes if n.name == "residual")
    assert conv2.inputs[0] is residual.inputs[1] and conv2.inputs[0].name == "r1_dequantized"
    assert residual.inputs[0].name == "c2"
    w3_scale = next(n for n in qdq.nodes if n.name == "w3_QuantizeLinear").inputs[1].values
    assert w3_scale[1] == 1.0 and w3_scale[0] > 0  # an all-zero channel keeps a valid scale
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    want = run_onnxruntime(reference, {"x": x})["y"]
    got = run_onnxruntime(to_model(qdq), {"x": x})["y"]
    assert got.shape == want.shape and not np.array_equal(got, want)
    assert np.abs(got - want).max() < 0.15 * np.abs(want).max()


def test_keep_fp_and_missing_thresholds() -> None:
    graph = _graph()
    plan = plan_qdq(graph, {k: v for k, v in THRESHOLDS.items() if k != "s"}, keep_fp=["conv2"])
    data = plan.to_json()
    assert _by_name(data) == {"x": ["conv1"], "r1": ["residual"]}
    assert data["kept_float"]["conv2"] == "quantize.keep_fp"
    assert data["kept_float"]["conv3"] == "no usable threshold for input 's'"
    assert [w["node"] for w in data["weights"]] == ["conv1"]


def test_errors() -> None:
    with pytest.raises(CalibrationError, match="'conv9'") as err:
        plan_qdq(_graph(), THRESHOLDS, keep_fp=["conv9"])
    assert "conv1" in (err.value.hint or "")
    graph = _graph(opset=11)
    with pytest.raises(GraphError, match="opset >= 13"):
        apply_qdq(graph, plan_qdq(graph, THRESHOLDS))


def test_gemm_and_matmul_weight_axes() -> None:
    x = gs.Variable("x", np.float32, [2, 4])
    h = gs.Variable("h", np.float32, [2, 3])
    y = gs.Variable("y", np.float32, [2, 5])
    b = gs.Constant("b", np.ones((3, 4), np.float32))  # transB: (N, K)
    m = gs.Constant("m", np.ones((3, 5), np.float32))  # (K, N)
    graph = gs.Graph(
        [
            gs.Node("Gemm", "gemm", {"transB": 1}, [x, b], [h]),
            gs.Node("MatMul", "matmul", {}, [h, m], [y]),
            gs.Node("Relu", "after", {}, [y], [gs.Variable("z", np.float32, [2, 5])]),
        ],
        [x],
        [y],
        opset=13,
    )
    plan = plan_qdq(graph, {"x": 1.0, "h": 2.0})
    assert [(w["node"], w["axis"]) for w in plan.to_json()["weights"]] == [("gemm", 0), ("matmul", 1)]
    out = run_onnxruntime(to_model(apply_qdq(graph, plan)), {"x": np.full((2, 4), 0.5, np.float32)})
    assert np.allclose(out["y"], 6.0, atol=0.05)


def test_keep_fp_names_unnamed_nodes_by_first_output() -> None:
    graph = _graph()
    next(n for n in graph.nodes if n.name == "conv2").name = ""
    plan = plan_qdq(graph, THRESHOLDS, keep_fp=["c2"])
    assert plan.to_json()["kept_float"]["c2"] == "quantize.keep_fp"
    assert "c2" not in {n for sites in plan.to_json()["activations"].values() for n in sites["consumers"]}
