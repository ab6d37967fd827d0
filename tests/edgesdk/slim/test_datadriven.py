"""ThiNet and LASSO: the selection maths on known Gram matrices, and the sampled statistics."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.errors import PruneError
from edgesdk.slim.criteria import ScoreContext, criterion
from edgesdk.slim.datadriven import contributions, group_grams, lasso_scores, thinet_scores

F32 = np.float32


def _gram(scales, rows: int = 400, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((rows, len(scales))) * np.asarray(scales)
    return z.T @ z


@pytest.mark.parametrize("score", [thinet_scores, lasso_scores])
def test_weak_channels_rank_lowest(score) -> None:
    scales = [1.0, 0.05, 2.0, 0.5, 0.01, 1.5]
    order = np.argsort(score(_gram(scales)))
    assert order.tolist()[:3] == [4, 1, 3] and set(order.tolist()[3:]) == {0, 2, 5}


def test_thinet_score_is_the_cumulative_error() -> None:
    """Independent channels: removing them in order of energy accumulates exactly their energies."""
    energies = np.array([4.0, 1.0, 9.0, 0.5])
    scores = thinet_scores(np.diag(energies))
    np.testing.assert_allclose(scores, [5.5, 1.5, 14.5, 0.5], atol=1e-9)


def test_thinet_scores_grow_with_removal_order() -> None:
    scores = thinet_scores(_gram([1, 2, 3, 4]))
    assert np.all(np.diff(np.sort(scores)) > 0)


def test_conv_contributions_sum_to_the_output(kit) -> None:
    b = kit.Builder(shape=(1, 3, 10, 10))
    model = b.model(b.conv(b.x, 3, 5, name="c"))
    graph, _ = kit.analysis_of(model)
    node = next(n for n in graph.nodes if n.name == "c")
    from edgesdk.graph.io import run_onnxruntime
    from edgesdk.slim.datadriven import _weights

    x = np.random.default_rng(0).standard_normal((1, 3, 10, 10)).astype(F32)
    y = next(iter(run_onnxruntime(model, {"x": x}).values()))[0]
    share = contributions(node, x[0], np.random.default_rng(5), _weights(node))
    assert share.shape[1] == 3
    rng = np.random.default_rng(5)  # replay the sampling to know which output each row is
    from edgesdk.slim.datadriven import CHANNELS, POSITIONS

    flat = rng.choice(100, size=POSITIONS, replace=False)
    picks = rng.integers(0, 5, size=(POSITIONS, CHANNELS))
    bias = node.inputs[2].values
    want = y[picks, (flat // 10)[:, None], (flat % 10)[:, None]] - bias[picks]
    np.testing.assert_allclose(share.sum(axis=1), want.reshape(-1), rtol=1e-4, atol=1e-4)


def test_grams_need_feeds_and_are_cached(kit) -> None:
    b = kit.Builder(shape=(1, 3, 8, 8))
    model = b.model(b.conv(b.op("Relu", [b.conv(b.x, 3, 6, name="a")]), 6, 2, name="c"))
    graph, analysis = kit.analysis_of(model)
    with pytest.raises(PruneError, match="calibration images"):
        group_grams(ScoreContext(graph, analysis))
    feeds = [kit.random_feed(model, seed=s) for s in range(2)]
    ctx = ScoreContext(graph, analysis, extras={"feeds": feeds})
    grams = group_grams(ctx)
    group = next(g for g in analysis.groups if g.sources == ["a"])
    assert grams[group.id].shape == (6, 6) and ctx.extras["reconstruct"]
    np.testing.assert_array_equal(group_grams(ctx)[group.id], grams[group.id])
    for name in ("thinet", "lasso"):
        info = criterion(name)
        assert info.needs_images and info.normalize == "none"
        assert info.fn(group, ctx).shape == (6,)
