"""Plans on real models: targets met, rounding, reasons, JSON round trip, method applicability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesdk.errors import ArtifactNotFound, PruneError
from edgesdk.graph.inspect import inspect_model
from edgesdk.slim.apply import apply_plan
from edgesdk.slim.plan import PLAN_FORMAT, SlimPlan, make_plan


@pytest.mark.parametrize("scope", ["global", "uniform"])
def test_l1_plan_meets_target_with_aligned_counts(exported, scope: str) -> None:
    model = exported("yolox-nano")
    plan = make_plan(model, method="l1", ratio=0.3, scope=scope)  # type: ignore[arg-type]
    assert 0.3 <= plan.removed_flops < 0.4
    for group in plan.groups:
        if group.removed:
            assert len(group.kept) % 8 == 0 or group.size < 8, group
            assert not group.reasons
    pinned = [g for g in plan.groups if g.reasons]
    assert any("Transpose" in g.reasons[0] for g in pinned)
    slim = apply_plan(model, plan)
    assert inspect_model(slim).flops == plan.flops_after


def test_progress_counts_every_scored_group(exported) -> None:
    calls: list[tuple[int, int]] = []
    plan = make_plan(
        exported("yolo-fastest"),
        method="l1",
        ratio=0.3,
        extras={"progress": lambda d, t: calls.append((d, t))},
    )
    total = calls[0][1]
    assert calls == [(i, total) for i in range(total)]  # one call before each group, in order
    assert total == sum(1 for g in plan.groups if not g.reasons and g.size > 1)


def test_plan_json_round_trip_and_apply(exported, tmp_path: Path) -> None:
    model = exported("yolo-fastest")
    plan = make_plan(model, method="random", ratio=0.4, seed=7)
    data = plan.to_json()
    assert (
        data["format"] == PLAN_FORMAT and data["removed_flops"] >= 0.4 and "scores" not in data["groups"][0]
    )
    assert SlimPlan.from_json(json.loads(json.dumps(data))).kept() == plan.kept()
    path = plan.save(tmp_path / "plan.json")
    again = SlimPlan.load(path)
    assert again.groups[1].scores is not None and again.kept() == plan.kept()
    assert inspect_model(apply_plan(model, again)).flops == plan.flops_after


def test_edited_plan_is_applied_as_written(exported) -> None:
    model = exported("yolo-fastest")
    plan = make_plan(model, method="l1", ratio=0.0)
    target = next(g for g in plan.groups if g.sources == ["conv_12"])
    target.kept = [0, 5, 9]
    slim = apply_plan(model, plan)
    conv = next(n for n in slim.graph.node if n.name == "conv_12")
    weight = next(i for i in slim.graph.initializer if i.name == conv.input[1])
    assert weight.dims[0] == 3


def test_bn_needs_batchnorm(exported) -> None:
    with pytest.raises(PruneError, match="no BatchNormalization carries these channels"):
        make_plan(exported("yolox-nano"), method="bn", ratio=0.3)
    plan = make_plan(exported("ultraface-rfb320"), method="bn", ratio=0.3)
    assert plan.removed_flops >= 0.3
    assert plan.notes == ["2 group(s) not scorable by bn"]
    unscored = [g for g in plan.groups if g.reasons and "BatchNormalization" in g.reasons[0]]
    assert [g.sources for g in unscored] == [["Conv_429"], ["Conv_433"]]


def test_bad_plans() -> None:
    with pytest.raises(PruneError, match="not an edgesdk slimming plan"):
        SlimPlan.from_json({"format": "other"})
    with pytest.raises(PruneError, match="malformed"):
        SlimPlan.from_json({"format": PLAN_FORMAT, "groups": [{"id": 1}]})
    with pytest.raises(ArtifactNotFound):
        SlimPlan.load(Path("/nonexistent/plan.json"))


def test_unreachable_ratio(exported) -> None:
    with pytest.raises(PruneError, match="at most"):
        make_plan(exported("yunet"), method="l1", ratio=0.95)
