"""In-graph statistics: the probes' scalars and bin indices equal the host's, on a real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import CalibrationError
from edgesdk.graph.io import run_onnxruntime, to_graph, to_model
from edgesdk.quant.histogram import FINE_BINS, IndexCounter, accumulate
from edgesdk.quant.ingraph import in_graph_tensors, index_model, range_model
from edgesdk.quant.stats import activation_model, calibration_tensors


def _graph(opset: int = 13) -> gs.Graph:
    """x (float32) -> Mul -> y ; x -> Cast<float16> -> h."""
    x = gs.Variable("x", np.float32, [1, 2, 5, 7])
    y = gs.Variable("y", np.float32, [1, 2, 5, 7])
    h = gs.Variable("h", np.float16, [1, 2, 5, 7])
    nodes = [
        gs.Node("Mul", "mul0", {}, [x, gs.Constant("k", np.array(-3.0, np.float32))], [y]),
        gs.Node("Cast", "cast0", {"to": 10}, [x], [h]),
    ]
    return gs.Graph(nodes, [x], [y, h], opset=opset)


def test_in_graph_tensors_are_the_float32_ones() -> None:
    assert in_graph_tensors(_graph(), ["x", "y", "h", "nope"]) == ["x", "y"]
    assert in_graph_tensors(_graph(opset=7), ["x", "y"]) == []


def test_range_model_scalars_equal_numpy() -> None:
    model = to_model(_graph())
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 7)).astype(np.float32)
    augmented, probes = range_model(model, ["x", "y"], raw=["h"])
    out = run_onnxruntime(augmented, {"x": x})
    assert "h" in out and "y" not in out  # the model's own outputs are replaced
    for name, values in (("x", x), ("y", x * np.float32(-3.0))):
        p = probes[name]
        assert float(out[p.lo]) == values.min() and float(out[p.hi]) == values.max()
        assert int(out[p.size]) == values.size
        assert float(out[p.total]) == pytest.approx(float(values.sum(dtype=np.float64)), rel=1e-5)
    assert [o.name for o in model.graph.output] == ["y", "h"]  # original untouched
    with pytest.raises(CalibrationError, match="'nope'"):
        range_model(model, ["nope"])


def test_range_model_sum_flags_nan_anywhere() -> None:
    model = to_model(_graph())
    augmented, probes = range_model(model, ["x"])
    for position in (0, 17, 69):
        x = np.ones((1, 2, 5, 7), np.float32)
        x.flat[position] = np.nan
        out = run_onnxruntime(augmented, {"x": x})
        assert not np.isfinite(out[probes["x"].total])


def test_index_model_matches_host_bins_at_edges() -> None:
    model = to_model(_graph())
    amax = 2.0
    # values on and next to bin edges, both signs, and the maximum itself
    edges = np.arange(0, FINE_BINS + 1, 997, dtype=np.float64) * amax / FINE_BINS
    near = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 9), [amax]]).astype(np.float32)
    x = np.resize(np.concatenate([near, -near]), (1, 2, 5, 7)).astype(np.float32)
    x.flat[:4] = [amax, -amax, 0.0, -0.0]
    scale = np.float32(FINE_BINS / amax)
    augmented, names = index_model(model, {"x": scale})
    out = run_onnxruntime(augmented, {"x": x})
    index = out[names["x"]]
    assert index.dtype == np.int16 and index.shape == x.shape
    expected = np.zeros(FINE_BINS, np.int64)
    accumulate(expected, x.copy(), amax)
    counter = IndexCounter(FINE_BINS)
    counter.add(index)
    assert np.array_equal(counter.histogram(), expected)


def test_real_model_in_graph_counts_equal_host_counts(
    models_dir: Path, sample_images: dict[str, Path]
) -> None:
    from edgesdk.export import export_recipe
    from edgesdk.quant.stats import ImageBatches
    from edgesdk.recipe import load_recipe

    recipe = load_recipe("yolox-nano")
    model = export_recipe(recipe, model_dir=models_dir, check_parity=False).model
    names = calibration_tensors(to_graph(model))
    picked = [names[0], names[1], names[2], names[len(names) // 2], names[-2], names[-1]]  # input, conv, ...
    feed = next(iter(ImageBatches([sample_images["bus"]], recipe)))
    whole = run_onnxruntime(activation_model(model, picked), {"images": feed}) | {"images": feed}
    amax = {n: float(np.abs(whole[n]).max()) for n in picked}
    ranged, probes = range_model(model, picked)
    scalars = run_onnxruntime(ranged, {"images": feed})
    for name in picked:
        assert float(scalars[probes[name].lo]) == whole[name].min()
        assert float(scalars[probes[name].hi]) == whole[name].max()
    indexed, outputs = index_model(model, {n: np.float32(FINE_BINS / amax[n]) for n in picked})
    indices = run_onnxruntime(indexed, {"images": feed})
    for name in picked:
        expected = np.zeros(FINE_BINS, np.int64)
        accumulate(expected, whole[name].copy(), amax[name], clip=False)
        counter = IndexCounter(FINE_BINS)
        counter.add(indices[outputs[name]])
        got = counter.histogram()
        assert got.sum() == whole[name].size
        assert np.array_equal(got, expected), (name, np.abs(got - expected).sum())
