"""Applying plans: exactness on every real model, parity at ratio 0, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.errors import PruneError
from edgesdk.graph.inspect import inspect_model
from edgesdk.graph.io import run_onnxruntime, to_graph
from edgesdk.slim.apply import apply_masks, apply_plan
from edgesdk.slim.groups import analyze, prepare
from edgesdk.slim.plan import make_plan

REAL = [
    ("yolox-nano", None, {}),
    ("yolo-fastest", None, {}),
    ("yolo-fastest", None, {"model__fuse_bn": False}),
    ("retinaface-mnet", None, {}),
    ("yunet", None, {}),
    ("yolov5n", "yolov5n_coco/yolov5n_bn_unfused.onnx", {}),
    ("ultraface-rfb320", None, {}),
]


@pytest.mark.parametrize(
    ("name", "model", "updates"), REAL, ids=[f"{n}{'-bn' if m or u else ''}" for n, m, u in REAL]
)
def test_random_half_is_exact_on_real_models(
    exported, kit, name: str, model: str | None, updates: dict
) -> None:
    """Every prunable group loses about half its channels; outputs equal the zeroed original's."""
    original = exported(name, model, **updates)
    _, analysis = kit.analysis_of(original)
    kept = kit.half_kept(analysis, seed=1)
    pruned = kit.assert_equivalent(original, kept)
    before, after = inspect_model(original), inspect_model(pruned)
    assert after.flops < 0.75 * before.flops and after.params < before.params
    assert [(o.name, o.shape) for o in after.outputs] == [(o.name, o.shape) for o in before.outputs]


def test_ratio_zero_is_bit_exact(exported, kit) -> None:
    original = exported("yolox-nano")
    plan = make_plan(original, method="l1", ratio=0.0)
    assert plan.kept() == {} and plan.flops_after == plan.flops_before
    slimmed = apply_plan(original, plan)
    feed = kit.random_feed(original)
    want, got = run_onnxruntime(original, feed), run_onnxruntime(slimmed, feed)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_plan_from_another_model_is_refused(exported) -> None:
    plan = make_plan(exported("yolo-fastest"), method="l1", ratio=0.3)
    with pytest.raises(PruneError, match="does not match this model"):
        apply_plan(exported("yolox-nano"), plan)


class TestRefusals:
    def _setup(self, kit):
        b = kit.Builder()
        model = b.model(b.conv(b.conv(b.x, 4, 6, name="mid"), 6, 2, name="out"))
        graph = prepare(to_graph(model))
        analysis = analyze(graph)
        ids = {g.sources[0] if g.sources else "": g.id for g in analysis.groups}
        return graph, analysis, ids

    def test_unprunable_group(self, kit) -> None:
        graph, analysis, ids = self._setup(kit)
        with pytest.raises(PruneError, match="cannot be pruned: feeds graph output 'conv_out6'"):
            apply_masks(graph, analysis, {ids["out"]: [0]})

    @pytest.mark.parametrize("kept", [[], [6], [-1]])
    def test_bad_kept_lists(self, kit, kept: list[int]) -> None:
        graph, analysis, ids = self._setup(kit)
        with pytest.raises(PruneError, match="non-empty subset of 0..5"):
            apply_masks(graph, analysis, {ids["mid"]: kept})

    def test_unknown_group(self, kit) -> None:
        graph, analysis, _ = self._setup(kit)
        with pytest.raises(PruneError, match="names channel group 99"):
            apply_masks(graph, analysis, {99: [0]})

    def test_checker_passes_and_outputs_keep_names(self, kit) -> None:
        graph, analysis, ids = self._setup(kit)
        apply_masks(graph, analysis, {ids["mid"]: [1, 2]})
        assert [t.name for t in graph.outputs] == ["conv_out6"]
        assert list(graph.outputs[0].shape) == [1, 2, 8, 8]
        mid = next(n for n in graph.nodes if n.name == "mid")
        assert mid.inputs[1].values.shape == (2, 4, 3, 3) and mid.inputs[1].name == "w1"
