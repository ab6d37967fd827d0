"""Cross-layer equalisation: the float function is unchanged and the scales are as designed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgeagent.files import sha256_file
from edgesdk.graph.io import load_model, onnxruntime_runner, to_graph, to_model
from edgesdk.quant.equalize import MIN_SCALE, balance_scales, channel_ranges, equalize, find_chains

C = 6


def _conv(name: str, x: gs.Tensor, weight: np.ndarray, bias: np.ndarray, **attrs: object) -> gs.Node:
    out = gs.Variable(name + "_out", np.float32, None)
    return gs.Node(
        "Conv",
        name,
        dict(attrs),
        [x, gs.Constant(name + "_w", weight), gs.Constant(name + "_b", bias)],
        [out],
    )


def _act(op: str, name: str, x: gs.Tensor) -> gs.Node:
    attrs = {"alpha": 0.1} if op == "LeakyRelu" else {}
    return gs.Node(op, name, attrs, [x], [gs.Variable(name + "_out", np.float32, None)])


def _graph(rng: np.random.Generator, middle: str = "LeakyRelu") -> gs.Graph:
    """conv_a -> leaky -> depthwise -> ``middle`` -> conv_b -> (identity) -> conv_c; channel ranges
    spread over 3 decades."""
    x = gs.Variable("x", np.float32, [2, 3, 10, 10])
    spread = np.logspace(-2, 1, C).astype(np.float32)
    nodes = [
        _conv(
            "conv_a",
            x,
            rng.standard_normal((C, 3, 3, 3)).astype(np.float32) * spread[:, None, None, None],
            rng.standard_normal(C).astype(np.float32) * spread,
            pads=[1, 1, 1, 1],
        )
    ]
    nodes.append(_act("LeakyRelu", "act_a", nodes[-1].outputs[0]))
    nodes.append(
        _conv(
            "dw",
            nodes[-1].outputs[0],
            rng.standard_normal((C, 1, 3, 3)).astype(np.float32),
            rng.standard_normal(C).astype(np.float32),
            group=C,
            pads=[1, 1, 1, 1],
        )
    )
    nodes.append(_act(middle, "act_dw", nodes[-1].outputs[0]))
    nodes.append(
        _conv(
            "conv_b",
            nodes[-1].outputs[0],
            rng.standard_normal((4, C, 1, 1)).astype(np.float32),
            rng.standard_normal(4).astype(np.float32),
        )
    )
    nodes.append(
        _conv(
            "conv_c",
            nodes[-1].outputs[0],
            rng.standard_normal((2, 4, 1, 1)).astype(np.float32),
            np.zeros(2, np.float32),
        )
    )
    return gs.Graph(nodes, [x], [nodes[-1].outputs[0]], opset=13)


def _feeds(rng: np.random.Generator, n: int = 3) -> list[dict[str, np.ndarray]]:
    return [{"x": rng.uniform(0, 1, (2, 3, 10, 10)).astype(np.float32)} for _ in range(n)]


def test_chains_found_and_stopped() -> None:
    rng = np.random.default_rng(0)
    chains = find_chains(_graph(rng).toposort())
    assert [(c.first.name, c.depthwise.name if c.depthwise else None, c.last.name) for c in chains] == [
        ("conv_a", "dw", "conv_b"),
        ("conv_b", None, "conv_c"),
    ]
    assert chains[0].tensors == ["act_a_out", "act_dw_out"] and chains[1].tensors == ["conv_b_out"]
    # Sigmoid is not positively homogeneous: no triple through it (conv_b -> conv_c stays)
    sigmoid = find_chains(_graph(rng, middle="Sigmoid").toposort())
    assert [(c.first.name, c.last.name) for c in sigmoid] == [("conv_b", "conv_c")]
    # a second reader of the tensor between the convs stops the chain
    graph = _graph(rng).toposort()
    extra = gs.Variable("extra", np.float32, None)
    graph.nodes.append(gs.Node("Relu", "reader", {}, [graph.nodes[-1].inputs[0]], [extra]))
    graph.outputs.append(extra)
    assert [c.first.name for c in find_chains(graph.toposort())] == ["conv_a"]


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_float_function_unchanged_and_ranges_equalised(strength: float) -> None:
    rng = np.random.default_rng(1)
    graph = _graph(rng)
    model = to_model(graph.copy())
    feeds = _feeds(rng)
    before, _ = channel_ranges(model, ["act_a_out", "act_dw_out", "conv_b_out"], feeds)
    result = equalize(graph, feeds, strength=strength)
    equalised = to_model(result.graph.cleanup())
    assert result.images == 3 and len(result.chains) == 2
    run_a, run_b = onnxruntime_runner(model), onnxruntime_runner(equalised)
    for feed in feeds:
        want, got = run_a(feed)["conv_c_out"], run_b(feed)["conv_c_out"]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    after, _ = channel_ranges(equalised, ["act_a_out", "act_dw_out", "conv_b_out"], feeds)
    # x1 of a triple costs no weight precision: every channel reaches the largest range
    assert before["act_a_out"].max() / before["act_a_out"].min() > 50
    np.testing.assert_allclose(after["act_a_out"], before["act_a_out"].max(), rtol=1e-4)
    # each tensor is divided by exactly its scale
    for name in ("act_a_out", "act_dw_out", "conv_b_out"):
        np.testing.assert_allclose(after[name], before[name] / result.scales[name], rtol=1e-4)
    if strength == 1.0:  # full balance: equal ranges at conv_b's input too
        np.testing.assert_allclose(after["act_dw_out"], before["act_dw_out"].max(), rtol=1e-4)


def test_balance_scales_formula() -> None:
    ranges = np.array([4.0, 1.0, 0.0])
    use = np.array([1.0, 0.25, 0.5])
    want = np.array([1.0, np.sqrt(0.25) / np.sqrt(0.25), np.sqrt(MIN_SCALE) / np.sqrt(0.5)])
    np.testing.assert_allclose(balance_scales(ranges, use, 0.5), want)
    np.testing.assert_allclose(balance_scales(ranges, use, 1.0), [1.0, 0.25, MIN_SCALE])
    with pytest.raises(ValueError, match="strength"):
        equalize(_graph(np.random.default_rng(0)), [], strength=1.5)


def test_real_model_unchanged(models_dir: Path, data_dir: Path) -> None:
    """Yolo-Fastest (darknet: leaky and linear convs, depthwise triples) on real COCO images."""
    from edgesdk.export import export_recipe
    from edgesdk.quant.stats import ImageBatches
    from edgesdk.recipe import load_recipe

    recipe = load_recipe("yolo-fastest")
    model = export_recipe(recipe, model_dir=models_dir, check_parity=False).model
    images = sorted((data_dir / "coco_val2017_first128").rglob("*.jpg"))[:3]
    feeds = [{"images": batch} for batch in ImageBatches(images, recipe)]
    result = equalize(to_graph(model), feeds)
    equalised = to_model(result.graph.cleanup(), like=model)
    assert len(result.chains) >= 25  # the backbone's pointwise -> depthwise -> pointwise blocks
    assert all(s.min() >= MIN_SCALE and s.max() <= 1 / MIN_SCALE for s in result.scales.values())
    want, got = onnxruntime_runner(model)(feeds[0]), onnxruntime_runner(equalised)(feeds[0])
    for name, value in want.items():
        assert np.abs(got[name] - value).max() <= 1e-4 * np.abs(value).max()
    # per-channel ranges of an equalised triple's first tensor are now all equal
    name = result.chains[1].x1.name
    ranges, _ = channel_ranges(equalised, [name], feeds)
    assert ranges[name].min() > 0.99 * ranges[name].max()


def test_calibrate_writes_the_equalised_model(models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    """quantize.equalize: the cache and Q/DQ model belong to the equalised float model, which is
    written beside them and bundled as the model."""
    from edgesdk.export import export_recipe
    from edgesdk.quant.calibrate import bundle_files, calibrate, write_outputs
    from edgesdk.quant.stats import ImageBatches
    from edgesdk.recipe import load_recipe

    recipe = load_recipe("yolo-fastest")
    plain = recipe.quantize.model_copy(
        update={"calibrator": "entropy", "bias_correction": False, "equalize": True, "keep_fp": []}
    )
    recipe = recipe.model_copy(update={"quantize": plain})
    result = calibrate(recipe, data_dir / "coco128", count=2, model_dir=models_dir, output=tmp_path)
    assert result.prepared.equalization is not None and result.prepared.equalization.images == 2
    summary = result.summary_json()
    assert summary["equalization"]["chains"] >= 25
    roles = [role for role, _path in bundle_files(tmp_path, recipe)]
    assert roles[:2] == ["model", "qdq_model"] and roles.count("model") == 1
    equalised = load_model(tmp_path / "model.onnx")
    original = export_recipe(recipe, model_dir=models_dir, check_parity=False).model
    assert {i.name for i in equalised.graph.initializer} != {i.name for i in original.graph.initializer}
    feed = {"images": next(iter(ImageBatches(result.prepared.selection.chosen[:1], recipe)))}
    want, got = onnxruntime_runner(original)(feed), onnxruntime_runner(equalised)(feed)
    for name, value in want.items():
        assert np.abs(got[name] - value).max() <= 1e-4 * np.abs(value).max()
    # deploy --calibration: the bundle's only model is the equalised one
    from edgesdk.deploy.flow import prepare as deploy_prepare

    bundle = deploy_prepare(recipe, tmp_path / "work", model_dir=models_dir, calibration=tmp_path).bundle
    models = [entry for entry in bundle.manifest["files"] if entry["role"] == "model"]
    assert [m["sha256"] for m in models] == [sha256_file(tmp_path / "model.onnx")]
    # a later run without equalisation removes the stale model
    result.prepared.equalization = None
    write_outputs(result, tmp_path)
    assert not (tmp_path / "model.onnx").exists()
