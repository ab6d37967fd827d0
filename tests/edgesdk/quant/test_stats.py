"""Activation statistics: which tensors, two streaming passes equal one histogram over all data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import CalibrationError, DatasetError
from edgesdk.graph.io import run_onnxruntime, to_graph, to_model
from edgesdk.quant.histogram import FINE_BINS, accumulate
from edgesdk.quant.stats import ImageBatches, activation_model, calibration_tensors, collect_stats
from edgesdk.recipe import Recipe, parse_recipe


def _recipe(batch: int = 1) -> Recipe:
    return parse_recipe(
        {
            "name": "tiny",
            "model": {"format": "onnx", "path": "tiny.onnx"},
            "input": {"name": "x", "shape": [batch, 3, 8, 8]},
            "preprocess": {"resize": "stretch", "scale": 1.0 / 255},
            "postprocess": {"decoder": "yolov5"},
        }
    )


def _tiny_graph(batch: int = 1) -> gs.Graph:
    """x -> Conv -> Relu -> Log (−inf where Relu is 0) ; Relu * (c1 + c2) -> y; a constant-only Add."""
    rng = np.random.default_rng(0)
    x = gs.Variable("x", np.float32, [batch, 3, 8, 8])
    conv = gs.Variable("conv", np.float32, [batch, 4, 8, 8])
    relu = gs.Variable("relu", np.float32, [batch, 4, 8, 8])
    log = gs.Variable("log", np.float32, [batch, 4, 8, 8])
    folded = gs.Variable("folded", np.float32, [1])
    y = gs.Variable("y", np.float32, [batch, 4, 8, 8])
    weight = gs.Constant("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    nodes = [
        gs.Node("Conv", "conv0", {"pads": [1, 1, 1, 1]}, [x, weight], [conv]),
        gs.Node("Relu", "relu0", {}, [conv], [relu]),
        gs.Node("Log", "log0", {}, [relu], [log]),
        gs.Node(
            "Add",
            "const_add",
            {},
            [gs.Constant("c1", np.ones(1, np.float32)), gs.Constant("c2", np.ones(1, np.float32))],
            [folded],
        ),
        gs.Node("Mul", "mul0", {}, [relu, folded], [y]),
    ]
    return gs.Graph(nodes, [x], [y, log], opset=13)


def _images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = folder / f"img{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_calibration_tensors_skip_constant_only_nodes() -> None:
    assert calibration_tensors(_tiny_graph()) == ["x", "conv", "relu", "log", "y"]


def test_two_passes_equal_one_histogram_over_everything(tmp_path: Path) -> None:
    model = to_model(_tiny_graph())
    recipe = _recipe()
    paths = _images(tmp_path, 5)
    ticks: list[tuple[int, int]] = []
    stats = collect_stats(model, ImageBatches(paths, recipe), progress=lambda d, t: ticks.append((d, t)))
    assert stats.images == 5 and stats.passes == 2 and stats.dropped == 0
    assert ticks[-1] == (10, 10) and len(ticks) == 10
    feeds = list(ImageBatches(paths, recipe))
    probe = activation_model(model, ["conv", "relu"])
    runs = [run_onnxruntime(probe, {"x": f}) | {"x": f} for f in feeds]
    for name in ("x", "conv", "relu", "y"):
        every = np.concatenate([r[name].ravel() for r in runs])
        got = stats.tensors[name]
        assert got.lo == every.min() and got.hi == every.max() and got.count == every.size
        expected = np.zeros(FINE_BINS, np.int64)
        accumulate(expected, every.copy(), got.amax)
        assert got.hist is not None and np.array_equal(got.hist, expected)
    log = stats.tensors["log"]
    assert log.nonfinite > 0 and log.count + log.nonfinite == 5 * 4 * 64
    assert log.hist is not None and log.hist.sum() == log.count


def test_partial_batch_is_dropped_and_unreadable_images_skipped(tmp_path: Path) -> None:
    model = to_model(_tiny_graph(batch=2))
    paths = _images(tmp_path, 4)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    batches = ImageBatches([*paths[:2], bad, *paths[2:]], _recipe(batch=2))
    stats = collect_stats(model, batches, histograms=False)
    assert stats.images == 4 and stats.passes == 1 and stats.skipped == [bad]
    assert stats.tensors["conv"].hist is None
    odd = collect_stats(model, ImageBatches(paths[:3], _recipe(batch=2)))
    assert odd.images == 2 and odd.dropped == 1
    with pytest.raises(DatasetError, match="no full batch"):
        collect_stats(model, ImageBatches([bad], _recipe(batch=2)))


def test_activation_model_adds_outputs_without_touching_the_original() -> None:
    model = to_model(_tiny_graph())
    probe = activation_model(model, ["x", "conv", "relu"])
    assert [o.name for o in probe.graph.output] == ["y", "log", "conv", "relu"]
    assert [o.name for o in model.graph.output] == ["y", "log"]
    with pytest.raises(CalibrationError, match="'nope'"):
        activation_model(model, ["nope"])


def test_real_model_tensor_names_exist(models_dir: Path, sample_images: dict[str, Path]) -> None:
    from edgesdk.export import export_recipe
    from edgesdk.recipe import load_recipe

    recipe = load_recipe("yolox-nano")
    model = export_recipe(recipe, model_dir=models_dir, check_parity=False).model
    graph = to_graph(model)
    names = calibration_tensors(graph)
    assert names[0] == "images" and "output" in names and len(names) > 300
    assert set(names) <= set(graph.tensors())
    stats = collect_stats(model, ImageBatches(list(sample_images.values()), recipe), input_name="images")
    assert stats.images == 2
    assert stats.tensors["images"].hi <= 255 and stats.tensors["images"].lo >= 0
    assert all(s.hist is not None for s in stats.tensors.values() if s.amax > 0)


def test_single_pass_is_close_to_two_passes(tmp_path: Path) -> None:
    from edgesdk.quant.histogram import coarse

    model = to_model(_tiny_graph())
    batches = ImageBatches(_images(tmp_path, 5), _recipe())
    exact = collect_stats(model, batches)
    ticks: list[tuple[int, int]] = []
    single = collect_stats(model, batches, passes=1, progress=lambda d, t: ticks.append((d, t)))
    assert single.passes == 1 and ticks[-1] == (5, 5)
    for name, want in exact.tensors.items():
        got = single.tensors[name]
        assert (got.lo, got.hi, got.count, got.nonfinite) == (want.lo, want.hi, want.count, want.nonfinite)
        assert got.stream is None and got.hist is not None and want.hist is not None
        assert got.hist.sum() == want.hist.sum()
        moved = np.abs(np.cumsum(coarse(got.hist)) - np.cumsum(coarse(want.hist))).max()
        assert moved <= 0.02 * want.hist.sum()
    with pytest.raises(CalibrationError, match="1 or 2 passes"):
        collect_stats(model, batches, passes=3)


def test_nan_tensors_are_repaired_on_the_host(tmp_path: Path) -> None:
    """onnxruntime's ReduceMax may skip a NaN; the in-graph sum catches it and the host recounts."""
    rng = np.random.default_rng(2)
    x = gs.Variable("x", np.float32, [1, 3, 8, 8])
    conv = gs.Variable("conv", np.float32, [1, 2, 8, 8])
    root = gs.Variable("root", np.float32, [1, 2, 8, 8])
    weight = gs.Constant("w", rng.standard_normal((2, 3, 3, 3)).astype(np.float32))
    nodes = [
        gs.Node("Conv", "conv0", {"pads": [1, 1, 1, 1]}, [x, weight], [conv]),
        gs.Node("Sqrt", "sqrt0", {}, [conv], [root]),  # NaN where conv < 0
    ]
    model = to_model(gs.Graph(nodes, [x], [root], opset=13))
    paths = _images(tmp_path, 3)
    stats = collect_stats(model, ImageBatches(paths, _recipe()))
    runs = [
        run_onnxruntime(activation_model(model, ["conv"]), {"x": f}) for f in ImageBatches(paths, _recipe())
    ]
    every = np.concatenate([r["root"].ravel() for r in runs])
    finite = every[np.isfinite(every)]
    got = stats.tensors["root"]
    assert got.nonfinite == every.size - finite.size > 0
    assert (got.lo, got.hi, got.count) == (finite.min(), finite.max(), finite.size)
    expected = np.zeros(FINE_BINS, np.int64)
    accumulate(expected, finite.copy(), got.amax)
    assert got.hist is not None and np.array_equal(got.hist, expected)
    assert stats.tensors["conv"].nonfinite == 0 and stats.tensors["conv"].count == every.size
