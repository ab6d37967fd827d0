"""Importance criteria: l1, bn, random; registry; normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.errors import EdgeSdkInternalError, PruneError
from edgesdk.slim.criteria import (
    ScoreContext,
    Unscorable,
    criterion,
    criterion_names,
    normalize,
    register_criterion,
)

F32 = np.float32


def _ctx(kit, model):
    graph, analysis = kit.analysis_of(model)
    return ScoreContext(graph, analysis, seed=3), analysis


def _group(analysis, source):
    return next(g for g in analysis.groups if source in g.sources)


def test_l1_is_the_filter_norm_summed_over_residual_sources(kit) -> None:
    b = kit.Builder()
    a = b.conv(b.x, 4, 5, name="a")
    c = b.conv(a, 5, 5, name="c")
    model = b.model(b.conv(b.op("Add", [a, c]), 5, 2, name="out"))
    ctx, analysis = _ctx(kit, model)
    group = _group(analysis, "a")
    weights = {n.name: n.inputs[1].values for n in ctx.graph.nodes if n.op == "Conv"}
    want = np.abs(weights["a"]).sum(axis=(1, 2, 3)) + np.abs(weights["c"]).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(criterion("l1").fn(group, ctx), want, rtol=1e-6)


def test_bn_reads_gamma_and_refuses_groups_without_bn(kit) -> None:
    b = kit.Builder()
    h = b.bn(b.conv(b.x, 4, 6, name="with_bn"), 6, name="bn")
    model = b.model(b.conv(b.conv(h, 6, 3, name="no_bn"), 3, 2, name="out"))
    ctx, analysis = _ctx(kit, model)
    gamma = next(n for n in ctx.graph.nodes if n.name == "bn").inputs[1].values
    np.testing.assert_allclose(criterion("bn").fn(_group(analysis, "with_bn"), ctx), np.abs(gamma), rtol=1e-6)
    with pytest.raises(Unscorable, match="no BatchNormalization"):
        criterion("bn").fn(_group(analysis, "no_bn"), ctx)


def test_random_is_seeded_per_group(kit) -> None:
    b = kit.Builder()
    model = b.model(b.conv(b.conv(b.x, 4, 6, name="a"), 6, 2))
    ctx, analysis = _ctx(kit, model)
    group = _group(analysis, "a")
    first, again = criterion("random").fn(group, ctx), criterion("random").fn(group, ctx)
    np.testing.assert_array_equal(first, again)
    ctx.seed = 4
    assert not np.array_equal(first, criterion("random").fn(group, ctx))


def test_registry() -> None:
    assert {"l1", "bn", "random"} <= set(criterion_names())
    assert criterion("bn").normalize == "none" and criterion("l1").normalize == "mean"
    with pytest.raises(PruneError, match="unknown slimming method 'l2'") as err:
        criterion("l2")
    assert "l1" in (err.value.hint or "")
    with pytest.raises(EdgeSdkInternalError, match="registered twice"):
        register_criterion("l1")(lambda group, ctx: np.zeros(group.size))


@pytest.mark.parametrize(("how", "want"), [("mean", [0.5, 1.5]), ("max", [1 / 3, 1.0]), ("none", [1.0, 3.0])])
def test_normalize(how: str, want: list[float]) -> None:
    np.testing.assert_allclose(normalize(np.array([1.0, 3.0]), how), want)  # type: ignore[arg-type]
    assert normalize(np.zeros(2), "mean").tolist() == [0.0, 0.0]
