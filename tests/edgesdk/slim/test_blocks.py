"""sss: residual blocks found on built graphs and real models, removed weakest first."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.errors import PruneError
from edgesdk.graph.inspect import inspect_model
from edgesdk.graph.io import run_onnxruntime, to_graph
from edgesdk.slim.apply import apply_plan
from edgesdk.slim.blocks import choose_blocks, find_blocks
from edgesdk.slim.groups import prepare
from edgesdk.slim.plan import make_plan

F32 = np.float32


def _resnet(kit, weak: float = 0.01):
    """stem -> x + weak*F1(x) -> y + F2(y) -> FPN-style add of two independent convs."""
    b = kit.Builder(shape=(1, 3, 8, 8))
    x = b.op("Relu", [b.conv(b.x, 3, 4, name="stem")])
    f1 = b.op(
        "Mul",
        [b.conv(b.op("Relu", [b.conv(x, 4, 4, name="f1a")]), 4, 4, name="f1b"), b.const(np.array(weak, F32))],
    )
    y = b.op("Add", [x, f1], name="add1")
    y2 = b.op("Add", [b.conv(b.op("Relu", [b.conv(y, 4, 4, name="f2a")]), 4, 4, name="f2b"), y], name="add2")
    fpn = b.op("Add", [b.conv(y2, 4, 4, name="p"), b.conv(y2, 4, 4, name="q")], name="fpn")
    return b.model(b.conv(fpn, 4, 2, name="head"))


def test_finds_residual_blocks_not_fpn_adds(kit) -> None:
    graph = prepare(to_graph(_resnet(kit)))
    blocks = find_blocks(graph)
    assert [(b.add, b.shortcut != b.branch_output) for b in blocks] == [("add1", True), ("add2", True)]
    assert set(blocks[0].nodes) >= {"f1a", "f1b"} and "stem" not in blocks[0].nodes
    assert blocks[1].flops == 2 * (2 * 4 * 8 * 8 * 4 * 9)


def test_sss_removes_the_weakest_branch(kit) -> None:
    model = _resnet(kit, weak=0.001)
    feeds = [kit.random_feed(model, seed=s) for s in range(2)]
    plan = make_plan(model, method="sss", ratio=0.1, extras={"feeds": feeds})
    removed = [b["add"] for b in plan.blocks if b["removed"]]
    assert removed == ["add1"] and plan.kept() == {}
    slim = apply_plan(model, plan)
    assert inspect_model(slim).flops == plan.flops_after
    assert not any(n.name in ("add1", "f1a", "f1b") for n in slim.graph.node)
    want, got = run_onnxruntime(model, feeds[0]), run_onnxruntime(slim, feeds[0])
    for name in want:  # the removed branch contributed 0.1 %: outputs barely move
        np.testing.assert_allclose(got[name], want[name], rtol=0.05, atol=0.05 * np.abs(want[name]).max())


def test_sss_limits(kit) -> None:
    model = _resnet(kit)
    graph = prepare(to_graph(model))
    blocks = find_blocks(graph)
    with pytest.raises(PruneError, match="sss can remove at most"):
        choose_blocks(blocks, np.array([0.1, 0.2]), 10 * sum(b.flops for b in blocks), 0.5)
    b = kit.Builder()
    plain = b.model(b.conv(b.conv(b.x, 4, 4), 4, 2))
    with pytest.raises(PruneError, match="no residual block"):
        make_plan(plain, method="sss", ratio=0.1, extras={"feeds": [kit.random_feed(plain)]})


def test_chained_blocks_on_yolo_fastest(exported, kit) -> None:
    model = exported("yolo-fastest")
    graph = prepare(to_graph(model))
    blocks = find_blocks(graph)
    assert len(blocks) == 18 and all(len(b.nodes) == 5 for b in blocks)
    scores = np.arange(len(blocks), dtype=float)  # remove in graph order: consecutive adds chain
    chosen, removed = choose_blocks(blocks, scores, inspect_model(model).flops, 0.3)
    assert len(chosen) >= 3
    plan = make_plan(model, method="sss", ratio=0.3, extras={"feeds": [kit.random_feed(model)]})
    slim = apply_plan(model, plan)
    assert inspect_model(slim).flops == plan.flops_after <= 0.7 * plan.flops_before
