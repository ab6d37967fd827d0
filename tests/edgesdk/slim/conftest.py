"""Fixtures for the slimming tests: a tiny graph builder, real exported models, and the
equivalence check every pruning test leans on.

Equivalence: removing channels must give the same outputs as keeping them but zeroing the
weights through which consumers (Conv/Gemm reading them as input channels) see them. That
holds for any correct slicing of any graph, so one check covers BN, depthwise, residual
adds, concat offsets, splits, slices and per-channel constants alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from edgesdk.graph.io import run_onnxruntime, to_graph, to_model
from edgesdk.slim.apply import apply_masks, finish
from edgesdk.slim.groups import ChannelAnalysis, analyze, prepare

F32 = np.float32


class Builder:
    """Builds small NCHW graphs node by node with random constants (seeded)."""

    def __init__(self, shape: Sequence[int] = (1, 4, 8, 8), opset: int = 13, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.x = gs.Variable("x", dtype=F32, shape=list(shape))
        self.nodes: list[gs.Node] = []
        self.opset = opset
        self._n = 0

    def _name(self, base: str) -> str:
        self._n += 1
        return f"{base}{self._n}"

    def const(self, values: Any, name: str = "c") -> gs.Constant:
        return gs.Constant(self._name(name), np.asarray(values))

    def op(self, op: str, inputs: list[gs.Tensor], attrs: dict[str, Any] | None = None, outputs: int = 1,
           name: str | None = None) -> Any:  # fmt: skip
        outs = [gs.Variable(self._name(f"{op.lower()}_out"), dtype=F32) for _ in range(outputs)]
        self.nodes.append(gs.Node(op, name or self._name(op), attrs or {}, inputs, outs))
        return outs[0] if outputs == 1 else outs

    def conv(
        self, x: gs.Tensor, cin: int, cout: int, k: int = 3, group: int = 1, name: str | None = None
    ) -> Any:
        w = self.const(self.rng.standard_normal((cout, cin // group, k, k)).astype(F32), "w")
        b = self.const(self.rng.standard_normal(cout).astype(F32), "b")
        attrs = {"kernel_shape": [k, k], "pads": [k // 2] * 4, "group": group}
        return self.op("Conv", [x, w, b], attrs, name=name)

    def bn(self, x: gs.Tensor, c: int, name: str | None = None) -> Any:
        gamma = self.rng.uniform(0.1, 2.0, c).astype(F32)
        beta, mean = self.rng.standard_normal((2, c)).astype(F32)
        var = self.rng.uniform(0.5, 2.0, c).astype(F32)
        params = [
            self.const(v, p) for v, p in zip((gamma, beta, mean, var), ("gamma", "beta", "mean", "var"))
        ]
        return self.op("BatchNormalization", [x, *params], {"epsilon": 1e-5}, name=name)

    def graph(self, *outputs: gs.Variable) -> gs.Graph:
        for out in outputs:
            out.dtype = F32
        return gs.Graph(nodes=self.nodes, inputs=[self.x], outputs=list(outputs), opset=self.opset)

    def model(self, *outputs: gs.Variable) -> onnx.ModelProto:
        graph = self.graph(*outputs)
        prepare(graph)
        return to_model(graph)


def analysis_of(model: onnx.ModelProto) -> tuple[gs.Graph, ChannelAnalysis]:
    graph = prepare(to_graph(model))
    return graph, analyze(graph)


def half_kept(analysis: ChannelAnalysis, seed: int = 0) -> dict[int, np.ndarray]:
    """A random half (>= 1 channel, >= 1 per segment) of every prunable group."""
    rng = np.random.default_rng(seed)
    kept = {}
    for group in analysis.prunable():
        chosen = set(rng.choice(group.size, max(1, group.size // 2), replace=False).tolist())
        for segment in group.segments:
            if not chosen.intersection(segment.tolist()):
                chosen.add(int(segment[0]))
        kept[group.id] = np.array(sorted(chosen))
    return kept


def zero_removed_inputs(
    model: onnx.ModelProto, kept: Mapping[int, Sequence[int] | np.ndarray]
) -> onnx.ModelProto:
    """``model`` with the consumer weights that read removed channels set to 0 (nothing removed)."""
    graph, analysis = analysis_of(model)
    masks = analysis.keep_masks(kept)
    nodes = {n.name: n for n in graph.nodes}
    for group in analysis.groups:
        for member in group.role("consumer"):
            mask = masks.get(member.tensor)
            if mask is None:
                continue
            node = nodes[member.node]
            weight = np.array(node.inputs[1].values)
            if node.op == "Conv":
                weight[:, ~mask] = 0
            elif int(node.attrs.get("transB", 0)):
                weight[:, ~mask] = 0
            else:
                weight[~mask] = 0
            node.inputs[1] = gs.Constant(node.inputs[1].name + "_z", weight)
    return to_model(graph)


def prune(model: onnx.ModelProto, kept: Mapping[int, Sequence[int] | np.ndarray]) -> onnx.ModelProto:
    graph, analysis = analysis_of(model)
    apply_masks(graph, analysis, kept)
    return finish(graph, model)


def random_feed(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    feed = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        feed[inp.name] = rng.random(dims, dtype=F32)
    return feed


def assert_equivalent(
    model: onnx.ModelProto, kept: Mapping[int, Sequence[int] | np.ndarray]
) -> onnx.ModelProto:
    """Prune ``model``; check shapes and outputs against the zeroed original. Returns the pruned model."""
    pruned = prune(model, kept)
    onnx.checker.check_model(pruned)
    feed = random_feed(model)
    want = run_onnxruntime(zero_removed_inputs(model, kept), feed)
    got = run_onnxruntime(pruned, feed)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].shape == value.shape, name
        scale = max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-4 * scale, err_msg=name)
    return pruned


@pytest.fixture(scope="session")
def exported(models_dir: Path) -> Callable[..., onnx.ModelProto]:
    """``exported(recipe_name, model=None, **updates)``: the recipe's fixed model (cached)."""
    from edgesdk.export import export_recipe
    from edgesdk.recipe import load_recipe, override

    cache: dict[tuple[Any, ...], onnx.ModelProto] = {}

    def _export(name: str, model: str | None = None, **updates: Any) -> onnx.ModelProto:
        key = (name, model, tuple(sorted(updates.items())))
        if key not in cache:
            recipe = load_recipe(name)
            if updates:
                recipe = override(recipe, {k.replace("__", "."): v for k, v in updates.items()})
            path = models_dir / model if model else None
            cache[key] = export_recipe(recipe, model_dir=models_dir, model=path, check_parity=False).model
        return cache[key]

    return _export


class Kit:
    """The helpers above, handed to tests as one fixture (test modules cannot import conftest)."""

    Builder = Builder
    analysis_of = staticmethod(analysis_of)
    half_kept = staticmethod(half_kept)
    prune = staticmethod(prune)
    random_feed = staticmethod(random_feed)
    assert_equivalent = staticmethod(assert_equivalent)
    zero_removed_inputs = staticmethod(zero_removed_inputs)


@pytest.fixture()
def kit() -> type[Kit]:
    return Kit
