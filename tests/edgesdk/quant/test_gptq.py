"""GPTQ weight rounding: less reconstruction error than round-to-nearest, on TensorRT's grid."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from edgesdk.graph.io import onnxruntime_runner, to_graph, to_model
from edgesdk.quant.biascorr import fake_quant_weight
from edgesdk.quant.calibrate import qdq_model
from edgesdk.quant.gptq import (
    collect_hessians,
    gptq_rows,
    nearest_rows,
    reconstruction_error,
    round_weights,
    rounding_layers,
)


def _var(name: str) -> gs.Variable:
    return gs.Variable(name, np.float32, None)


def _graph(rng: np.random.Generator) -> gs.Graph:
    """conv (3x3, pad 1) -> relu -> depthwise (3x3, stride 2, SAME_UPPER) -> relu -> grouped 1x1
    (2 groups) -> global pool -> gemm (transB) -> matmul; correlated input channels."""
    x = gs.Variable("x", np.float32, [2, 4, 12, 12])
    nodes = [
        gs.Node(
            "Conv",
            "conv",
            {"pads": [1, 1, 1, 1]},
            [x, gs.Constant("conv_w", rng.standard_normal((8, 4, 3, 3)).astype(np.float32))],
            [_var("c")],
        )
    ]
    nodes.append(gs.Node("Relu", "relu", {}, [nodes[-1].outputs[0]], [_var("r")]))
    nodes.append(
        gs.Node(
            "Conv",
            "dw",
            {"group": 8, "strides": [2, 2], "auto_pad": "SAME_UPPER"},
            [
                nodes[-1].outputs[0],
                gs.Constant("dw_w", rng.standard_normal((8, 1, 3, 3)).astype(np.float32)),
                gs.Constant("dw_b", rng.standard_normal(8).astype(np.float32)),
            ],
            [_var("d")],
        )
    )
    nodes.append(gs.Node("Relu", "relu2", {}, [nodes[-1].outputs[0]], [_var("r2")]))
    nodes.append(
        gs.Node(
            "Conv",
            "grouped",
            {"group": 2},
            [nodes[-1].outputs[0], gs.Constant("g_w", rng.standard_normal((6, 4, 1, 1)).astype(np.float32))],
            [_var("g")],
        )
    )
    nodes.append(gs.Node("GlobalAveragePool", "pool", {}, [nodes[-1].outputs[0]], [_var("p")]))
    nodes.append(gs.Node("Flatten", "flat", {"axis": 1}, [nodes[-1].outputs[0]], [_var("f")]))
    nodes.append(
        gs.Node(
            "Gemm",
            "gemm",
            {"transB": 1},
            [nodes[-1].outputs[0], gs.Constant("gemm_w", rng.standard_normal((10, 6)).astype(np.float32))],
            [_var("y")],
        )
    )
    nodes.append(
        gs.Node(
            "MatMul",
            "matmul",
            {},
            [nodes[-1].outputs[0], gs.Constant("mm_w", rng.standard_normal((10, 5)).astype(np.float32))],
            [_var("z")],
        )
    )
    out = gs.Variable("out", np.float32, [2, 5])
    nodes.append(gs.Node("Relu", "relu3", {}, [nodes[-1].outputs[0]], [out]))
    return gs.Graph(nodes, [x], [nodes[-1].outputs[0]], opset=13)


def _feeds(rng: np.random.Generator, n: int = 4) -> list[dict[str, np.ndarray]]:
    mix = rng.standard_normal((4, 4)).astype(np.float32)
    return [
        {"x": np.einsum("ij,njhw->nihw", mix, rng.standard_normal((2, 4, 12, 12)).astype(np.float32))}
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def rounded() -> tuple[gs.Graph, gs.Graph, object]:
    rng = np.random.default_rng(0)
    original = _graph(rng)
    feeds = _feeds(rng)
    result = round_weights(_graph(np.random.default_rng(0)), feeds, positions=64)
    return original, result.graph, result


def test_every_quantised_layer_is_rounded_and_beats_nearest(rounded: tuple) -> None:
    _original, _graph_out, result = rounded
    assert set(result.errors) == {"conv", "dw", "grouped", "gemm", "matmul"}
    assert result.images == 4
    for key, (nearest, gptq) in result.errors.items():
        assert gptq <= nearest * 1.0001, key
    # the full conv and the gemm have many correlated inputs: GPTQ must gain clearly there
    assert result.errors["conv"][1] < 0.8 * result.errors["conv"][0]
    assert result.errors["gemm"][1] < 0.8 * result.errors["gemm"][0]


def _rows_of(node: gs.Node, values: np.ndarray) -> np.ndarray:
    if node.op == "MatMul":
        return values.T
    return values.reshape(values.shape[0], -1)


def test_weights_lie_on_the_fixed_grid(rounded: tuple) -> None:
    original, graph, _result = rounded
    before = {n.name: np.asarray(n.inputs[1].values) for n in original.nodes if len(n.inputs) > 1}
    for node in graph.nodes:
        if node.name not in before:
            continue
        old = _rows_of(node, before[node.name])
        new = _rows_of(node, np.asarray(node.inputs[1].values))
        scale = (np.abs(old).max(axis=1) / 127).astype(np.float32)[:, None]
        q = new / scale
        np.testing.assert_allclose(q, np.rint(q), atol=1e-4, err_msg=node.name)
        assert np.abs(np.rint(q)).max() <= 127
        np.testing.assert_array_equal(np.abs(np.rint(q)).max(axis=1), 127)
        np.testing.assert_allclose(np.abs(new).max(axis=1), np.abs(old).max(axis=1), rtol=1e-6)
        # TensorRT / the Q/DQ writer recompute the scale from the rounded weights: same values
        axis = 1 if node.op == "MatMul" else 0
        requant = fake_quant_weight(
            np.asarray(node.inputs[1].values),
            (np.abs(new).max(axis=1) / 127).astype(np.float32),
            axis,
        )
        np.testing.assert_array_equal(requant, np.asarray(node.inputs[1].values))
        if node.name in ("conv", "gemm"):  # many inputs per row: some roundings must differ
            assert not np.array_equal(np.rint(q), np.rint(old / scale)), f"{node.name}: GPTQ changed nothing"


def test_rounded_model_is_valid_and_its_qdq_runs(rounded: tuple) -> None:
    _original, graph, _result = rounded
    model = to_model(graph.cleanup())
    onnx.checker.check_model(model, full_check=True)
    qdq, plan = qdq_model(model, {"x": 4.0, "r": 4.0, "r2": 4.0, "f": 4.0, "y": 40.0})
    onnx.checker.check_model(qdq)
    assert len(plan.weights) == 5
    out = onnxruntime_runner(qdq)(_feeds(np.random.default_rng(5), 1)[0])
    assert np.isfinite(next(iter(out.values()))).all()


def test_output_closer_to_float_than_nearest() -> None:
    """On the images it was rounded on (every position sampled), the whole rounded model (weights
    only) is closer to the float model than round-to-nearest."""
    rng = np.random.default_rng(1)
    graph = _graph(rng)
    feeds = _feeds(rng, 6)
    float_run = onnxruntime_runner(to_model(graph))
    nearest = to_graph(to_model(graph))
    for node in nearest.nodes:
        if len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant):
            values = np.asarray(node.inputs[1].values)
            rows = _rows_of(node, values)[None]
            q = nearest_rows(rows)[0] * (np.abs(rows[0]).max(axis=1) / 127).astype(np.float32)[:, None]
            node.inputs[1] = gs.Constant(
                node.inputs[1].name + "_rtn",
                (q.T if node.op == "MatMul" else q).reshape(values.shape).astype(np.float32),
            )
    gptq = round_weights(graph, feeds, positions=10_000).graph
    runs = {"nearest": onnxruntime_runner(to_model(nearest)), "gptq": onnxruntime_runner(to_model(gptq))}
    errors = {}
    for name, run in runs.items():
        errors[name] = np.mean(
            [
                np.linalg.norm(run(f)["out"] - float_run(f)["out"]) / np.linalg.norm(float_run(f)["out"])
                for f in feeds
            ]
        )
    assert errors["gptq"] < errors["nearest"]


def test_keep_fp_and_decoder_tail_are_left_alone() -> None:
    graph = _graph(np.random.default_rng(2))
    names = [n.name for n in rounding_layers(graph, keep_fp=["dw"])]
    assert names == ["conv", "grouped", "gemm", "matmul"]
    # a Conv with nothing weighted downstream is decoder tail for the Q/DQ writer too: not rounded
    x = gs.Variable("x", np.float32, [1, 2, 4, 4])
    conv = gs.Node("Conv", "c", {}, [x, gs.Constant("w", np.ones((1, 2, 1, 1), np.float32))], [_var("y")])
    assert [n.name for n in rounding_layers(gs.Graph([conv], [x], conv.outputs, opset=13))] == ["c"]
    sig = gs.Node("Sigmoid", "s", {}, [x], [_var("s_out")])
    assert rounding_layers(gs.Graph([sig], [x], sig.outputs, opset=13)) == []


def test_hessians_match_explicit_im2col_with_all_positions() -> None:
    """With every output position sampled, H equals X X^T of an explicit padded im2col."""
    rng = np.random.default_rng(3)
    graph = _graph(rng)
    feed = _feeds(rng, 1)
    conv = graph.nodes[0]
    moments, count = collect_hessians(to_model(graph), [conv], feed, positions=10_000)
    x = np.pad(feed[0]["x"].astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = [x[n, :, i : i + 3, j : j + 3].reshape(-1) for n in range(2) for i in range(12) for j in range(12)]
    explicit = np.stack(cols)
    assert count == 1 and moments["conv"].count == 2 * 144
    second = explicit.T @ explicit / len(explicit)
    np.testing.assert_allclose(moments["conv"].hessian(centered=False)[0], second, rtol=1e-5, atol=1e-6)
    mean = explicit.mean(axis=0)
    np.testing.assert_allclose(moments["conv"].mean[0], mean, rtol=1e-5, atol=1e-6)
    covariance = second - np.outer(mean, mean)
    np.testing.assert_allclose(moments["conv"].hessian(centered=True)[0], covariance, rtol=1e-5, atol=1e-6)


def test_gptq_rows_pins_row_maxima_and_handles_dead_inputs() -> None:
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((3, 5, 9))
    rows[1, 2] = 0.0  # an all-zero row stays zero
    inputs = rng.standard_normal((50, 3, 9))
    inputs[:, :, 4] = 0.0  # an input that is always zero
    hessian = np.einsum("sgi,sgj->gij", inputs, inputs)
    q = gptq_rows(rows, hessian)
    assert np.all(q == np.rint(q)) and np.abs(q).max() <= 127
    np.testing.assert_array_equal(q[1, 2], 0)
    live = np.ones((3, 5), bool)
    live[1, 2] = False
    assert np.all(np.abs(q).max(axis=2)[live] == 127)
    scale = (np.abs(rows).max(axis=2) / 127).astype(np.float32)
    scale = np.where(scale > 0, scale, 1)[..., None]
    assert reconstruction_error(rows, q * scale, hessian) <= reconstruction_error(
        rows, nearest_rows(rows) * scale, hessian
    )


def test_mean_output_shift_goes_into_the_bias() -> None:
    """Centred rounding: on the images it was rounded on, the first conv's per-channel output
    means match the float model's (its input is the image, so no upstream rounding interferes)."""
    rng = np.random.default_rng(6)
    graph = _graph(rng)
    feeds = _feeds(rng, 3)
    rounded = round_weights(to_graph(to_model(graph)), feeds, positions=10_000).graph
    conv = next(n for n in rounded.nodes if n.name == "conv")
    assert conv.inputs[2].name == "conv_bias_gptq"  # the bias-less conv got one

    def means(g: gs.Graph) -> np.ndarray:
        g = g.copy()
        g.outputs = [next(t for name, t in g.tensors().items() if name == "c")]
        run = onnxruntime_runner(to_model(g.cleanup()))
        return np.mean([run(f)["c"].mean(axis=(0, 2, 3)) for f in feeds], axis=0)

    want, got = means(graph), means(rounded)
    np.testing.assert_allclose(got, want, atol=1e-4 * float(np.abs(want).max()))
