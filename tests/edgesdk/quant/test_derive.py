"""Derived statistics: which tensors follow from another, and that filling them in agrees with
measuring them (exactly for moved data, up to float32 rounding for a LeakyReLU's input)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph.io import to_graph, to_model
from edgesdk.quant.derive import Derived, derivations
from edgesdk.quant.ingraph import in_graph_tensors
from edgesdk.quant.stats import ImageBatches, calibration_tensors, collect_stats
from edgesdk.recipe import parse_recipe


def _var(name: str, shape: list[int]) -> gs.Variable:
    return gs.Variable(name, np.float32, shape)


def _graph() -> gs.Graph:
    """x -> conv -> c -> LeakyRelu(0.1) -> a -> Transpose -> t -> Reshape -> r (output);
    c2 = conv(x) read by LeakyRelu and Relu (two readers); c3 = conv(x) -> Relu (not invertible);
    c4 = conv(x) -> LeakyRelu -> l4 -> LeakyRelu -> l5 (output): two LeakyReLUs in a row."""
    rng = np.random.default_rng(0)
    x = _var("x", [1, 3, 6, 6])
    w = [gs.Constant(f"w{i}", rng.standard_normal((4, 3, 1, 1)).astype(np.float32)) for i in range(4)]
    c, a, t, r = (
        _var("c", [1, 4, 6, 6]),
        _var("a", [1, 4, 6, 6]),
        _var("t", [1, 6, 6, 4]),
        _var("r", [1, 144]),
    )
    c2, a2, b2 = _var("c2", [1, 4, 6, 6]), _var("a2", [1, 4, 6, 6]), _var("b2", [1, 4, 6, 6])
    c3, a3 = _var("c3", [1, 4, 6, 6]), _var("a3", [1, 4, 6, 6])
    c4, l4, l5 = _var("c4", [1, 4, 6, 6]), _var("l4", [1, 4, 6, 6]), _var("l5", [1, 4, 6, 6])
    shape = gs.Constant("shape", np.array([1, 144], np.int64))
    nodes = [
        gs.Node("Conv", "conv", {}, [x, w[0]], [c]),
        gs.Node("LeakyRelu", "leaky", {"alpha": 0.1}, [c], [a]),
        gs.Node("Transpose", "tr", {"perm": [0, 2, 3, 1]}, [a], [t]),
        gs.Node("Reshape", "rs", {}, [t, shape], [r]),
        gs.Node("Conv", "conv2", {}, [x, w[1]], [c2]),
        gs.Node("LeakyRelu", "leaky2", {"alpha": 0.2}, [c2], [a2]),
        gs.Node("Relu", "relu2", {}, [c2], [b2]),
        gs.Node("Conv", "conv3", {}, [x, w[2]], [c3]),
        gs.Node("Relu", "relu3", {}, [c3], [a3]),
        gs.Node("Conv", "conv4", {}, [x, w[3]], [c4]),
        gs.Node("LeakyRelu", "leaky4", {"alpha": 0.1}, [c4], [l4]),
        gs.Node("LeakyRelu", "leaky5", {"alpha": 0.3}, [l4], [l5]),
    ]
    return gs.Graph(nodes, [x], [r, a2, b2, a3, l5], opset=13)


def test_derivations_on_a_built_graph() -> None:
    graph = _graph()
    names = calibration_tensors(graph)
    got = derivations(graph, names)
    alpha = float(np.float32(0.1))
    assert got["c"] == Derived("a", alpha)  # the LeakyReLU's input
    assert got["t"] == Derived("a") and got["r"] == Derived("a")  # moved data, through a chain
    assert "c2" not in got  # read by two nodes
    assert "c3" not in got  # Relu loses the negative half
    # l4 follows from l5; c4 would need two LeakyReLUs inverted: measured
    assert got["l4"] == Derived("l5", float(np.float32(0.3))) and "c4" not in got
    assert all(d.source not in got for d in got.values())


def test_derivations_need_both_ends_measured() -> None:
    graph = _graph()
    names = [n for n in calibration_tensors(graph) if n != "a"]
    got = derivations(graph, names)
    assert "c" not in got and "t" not in got and got["r"] == Derived("t")


def _stats_both_ways(model: object, recipe: object, paths: list[Path]) -> tuple[dict, dict]:
    runs = []
    for derive in (False, True):
        stats = collect_stats(model, ImageBatches(paths, recipe), input_name="x", derive=derive)
        runs.append(stats.tensors)
    return runs[0], runs[1]


def test_filled_in_statistics_agree_with_measured_ones(tmp_path: Path) -> None:
    model = to_model(_graph())
    recipe = parse_recipe(
        {
            "name": "tiny",
            "model": {"format": "onnx", "path": "tiny.onnx"},
            "input": {"name": "x", "shape": [1, 3, 6, 6]},
            "preprocess": {"resize": "stretch", "scale": 1.0 / 255, "mean": [0.5, 0.5, 0.5]},
            "postprocess": {"decoder": "yolov5"},
        }
    )
    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    measured, derived = _stats_both_ways(model, recipe, paths)
    for name in ("t", "r"):  # moved data: identical
        assert (derived[name].lo, derived[name].hi, derived[name].count) == (
            measured[name].lo,
            measured[name].hi,
            measured[name].count,
        )
        assert np.array_equal(derived[name].hist, measured[name].hist)
    for name in ("c", "l4"):  # a LeakyReLU's input: float32 rounding apart
        m, d = measured[name], derived[name]
        assert m.lo < 0 < m.hi and d.count == m.count
        np.testing.assert_allclose([d.lo, d.hi], [m.lo, m.hi], rtol=1e-6)
        assert d.hist.sum() == m.hist.sum() == m.count
        assert np.abs(d.hist - m.hist).sum() <= 2  # 108 values: at most one crosses a bin edge


def test_real_model_derivations_keep_the_histograms(models_dir: Path, sample_images: dict[str, Path]) -> None:
    """RetinaFace: 38 Conv -> LeakyReLU pairs and the head's Transpose/Reshape outputs."""
    from edgesdk.export import export_recipe
    from edgesdk.recipe import load_recipe

    recipe = load_recipe("retinaface-mnet")
    model = export_recipe(recipe, model_dir=models_dir, check_parity=False).model
    graph = to_graph(model)
    derived = derivations(graph, in_graph_tensors(graph, calibration_tensors(graph)))
    leaky = [n for n, d in derived.items() if d.alpha is not None]
    moved = [n for n, d in derived.items() if d.alpha is None]
    assert len(leaky) == 38 and len(moved) == 18
    batches = [ImageBatches([sample_images["zidane"]], recipe) for _ in range(2)]
    name = model.graph.input[0].name
    measured = collect_stats(model, batches[0], input_name=name, derive=False).tensors
    filled = collect_stats(model, batches[1], input_name=name, derive=True).tensors
    for n in moved:
        assert np.array_equal(filled[n].hist, measured[n].hist), n
    for n in leaky:
        m, f = measured[n], filled[n]
        assert f.count == m.count and abs(f.amax - m.amax) <= 1e-6 * m.amax, n
        assert np.abs(f.hist - m.hist).sum() <= 1e-3 * m.count, n  # edge values only
