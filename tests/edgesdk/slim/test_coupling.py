"""Coupling rules for compute and element-wise ops, each on a tiny built graph.

Every test checks the groups the analysis finds (sizes, sources, members, reasons) and
that pruning a random half of each prunable group gives exactly the outputs of the
original with the removed channels' consumer weights zeroed.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.errors import EdgeSdkInternalError
from edgesdk.slim.coupling import coupling, known_ops, rule_for

F32 = np.float32


def _group_of(analysis, source: str):
    return next(g for g in analysis.groups if source in g.sources)


class TestConvChain:
    def test_conv_bn_relu_conv(self, kit) -> None:
        b = kit.Builder()
        y = b.conv(b.op("Relu", [b.bn(b.conv(b.x, 4, 16, name="c1"), 16, name="bn1")]), 16, 8, name="c2")
        model = b.model(y)
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "c1")
        assert group.size == 16 and group.prunable and group.sources == ["c1"]
        roles = {(m.node, m.role) for m in group.members}
        assert {("c1", "source"), ("bn1", "through"), ("c2", "consumer")} <= roles
        out_group = _group_of(analysis, "c2")
        assert not out_group.prunable and "feeds graph output" in out_group.reasons[0]
        pruned = kit.assert_equivalent(model, {group.id: [0, 3, 4, 9, 15]})
        weights = {i.name: list(i.dims) for i in pruned.graph.initializer}
        consumer = next(n for n in pruned.graph.node if n.name == "c2")
        assert weights[consumer.input[1]] == [8, 5, 3, 3]

    def test_graph_input_is_pinned(self, kit) -> None:
        b = kit.Builder()
        model = b.model(b.conv(b.conv(b.x, 4, 6), 6, 2))
        _, analysis = kit.analysis_of(model)
        pinned = [g for g in analysis.groups if not g.sources]
        assert len(pinned) == 1 and pinned[0].reasons == ["graph input 'x'"]


@pytest.mark.parametrize(
    "chain",
    [
        ["Relu"],
        ["LeakyRelu"],
        ["Clip"],
        ["silu"],
        ["mish"],
        ["HardSigmoid", "Sigmoid", "Tanh", "Elu"],
        ["MaxPool"],
        ["GlobalAveragePool"],
    ],
)
def test_elementwise_chains_pass_channels(kit, chain: list[str]) -> None:
    b = kit.Builder()
    h = b.conv(b.x, 4, 12, name="src")
    for op in chain:
        if op == "silu":  # YOLOv5/YOLOX SiLU: x * sigmoid(x)
            h = b.op("Mul", [h, b.op("Sigmoid", [h])])
        elif op == "mish":  # darknet/YOLOv4 Mish: x * tanh(softplus(x))
            h = b.op("Mul", [h, b.op("Tanh", [b.op("Softplus", [h])])])
        elif op == "Clip":
            h = b.op("Clip", [h, b.const(np.array(0, F32)), b.const(np.array(6, F32))])
        elif op == "MaxPool":
            h = b.op("MaxPool", [h], {"kernel_shape": [2, 2], "strides": [2, 2]})
        else:
            h = b.op(op, [h])
    model = b.model(b.conv(h, 12, 3, k=1, name="dst"))
    _, analysis = kit.analysis_of(model)
    group = _group_of(analysis, "src")
    assert group.prunable and group.size == 12
    assert [m.node for m in group.role("consumer")] == ["dst"]
    kit.assert_equivalent(model, {group.id: [1, 2, 5, 7, 11]})


class TestDepthwise:
    def test_depthwise_carries_channels_and_gets_new_group(self, kit) -> None:
        b = kit.Builder()
        dw = b.conv(b.op("Relu", [b.conv(b.x, 4, 8, k=1, name="pw1")]), 8, 8, group=8, name="dw")
        model = b.model(b.conv(b.bn(dw, 8), 8, 4, k=1, name="pw2"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "pw1")
        assert group.size == 8 and group.prunable
        assert ("dw", "through") in {(m.node, m.role) for m in group.members}
        assert not any(g for g in analysis.groups if "dw" in g.sources)
        pruned = kit.assert_equivalent(model, {group.id: [0, 2, 3]})
        dw_node = next(n for n in pruned.graph.node if n.name == "dw")
        assert next(a.i for a in dw_node.attribute if a.name == "group") == 3

    def test_channel_multiplier(self, kit) -> None:
        b = kit.Builder()
        dw = b.conv(b.conv(b.x, 4, 6, k=1, name="pw1"), 6, 12, group=6, name="dw")  # 2 outputs per input
        model = b.model(b.conv(dw, 12, 4, k=1, name="pw2"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "pw1")
        member = next(m for m in group.members if m.node == "dw" and len(m.index) == 12)
        assert group.size == 6 and list(member.index) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        kit.assert_equivalent(model, {group.id: [1, 4]})

    def test_grouped_conv_is_unprunable(self, kit) -> None:
        b = kit.Builder()
        g2 = b.conv(b.conv(b.x, 4, 8, name="c1"), 8, 8, group=2, name="grouped")
        model = b.model(b.conv(g2, 8, 2, name="c3"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "c1")
        assert not group.prunable and "grouped convolution (group=2)" in group.reasons[0]


class TestResidualAdd:
    def test_add_ties_branches_into_one_group(self, kit) -> None:
        b = kit.Builder()
        a = b.op("Relu", [b.conv(b.x, 4, 8, name="stem")])
        branch = b.conv(b.op("Relu", [b.conv(a, 8, 4, k=1, name="mid")]), 4, 8, name="expand")
        s = b.op("Add", [a, branch], name="add")
        s2 = b.op("Add", [s, b.conv(s, 8, 8, name="expand2")], name="add2")
        model = b.model(b.conv(s2, 8, 3, name="head"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "stem")
        assert group.sources == ["stem", "expand", "expand2"] and group.size == 8
        for member in group.members:  # one decision per channel index: every member maps c -> c
            assert list(member.index) == list(range(8))
        assert sorted(m.node for m in group.role("consumer")) == ["expand2", "head", "mid"]
        kit.assert_equivalent(model, {group.id: [0, 5, 6], _group_of(analysis, "mid").id: [1, 2]})

    def test_add_with_broadcast_per_channel_constant(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 6, name="src")
        h = b.op("Mul", [h, b.const(np.arange(1, 7, dtype=F32).reshape(1, 6, 1, 1))])
        h = b.op("Add", [b.const(np.arange(6, dtype=F32).reshape(6, 1, 1)), h])
        h = b.op("PRelu", [h, b.const(np.full((6, 1, 1), 0.1, F32))])
        h = b.op("Sub", [h, b.const(np.array(2.0, F32))])
        model = b.model(b.conv(h, 6, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable
        kit.assert_equivalent(model, {group.id: [0, 4]})

    def test_spatial_attention_broadcast_is_not_coupled(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 8, name="src")
        attn = b.op("Sigmoid", [b.conv(h, 8, 1, name="attn")])  # [N, 1, H, W] gates every channel
        model = b.model(b.conv(b.op("Mul", [h, attn]), 8, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable and group.sources == ["src"]
        kit.assert_equivalent(model, {group.id: [3, 4, 5]})


class TestResizeAndPools:
    def test_resize_with_scales_and_sizes(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 8, name="src")
        empty = b.const(np.zeros(0, F32))
        up = b.op("Resize", [h, empty, b.const(np.array([1, 1, 2, 2], F32))], {"mode": "nearest"})
        sized = b.op(
            "Resize", [h, empty, empty, b.const(np.array([1, 8, 16, 16], np.int64))], {"mode": "nearest"}
        )
        model = b.model(b.conv(b.op("Add", [up, sized]), 8, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable
        kit.assert_equivalent(model, {group.id: [0, 1, 7]})

    def test_upsample_opset9(self, kit) -> None:
        b = kit.Builder(opset=9)
        w = b.const(b.rng.standard_normal((6, 4, 1, 1)).astype(F32))
        h = b.op("Conv", [b.x, w], {"kernel_shape": [1, 1]}, name="src")
        up = b.op("Upsample", [h, b.const(np.array([1, 1, 2, 2], F32))], {"mode": "nearest"})
        w2 = b.const(b.rng.standard_normal((2, 6, 1, 1)).astype(F32))
        model = b.model(b.op("Conv", [up, w2], {"kernel_shape": [1, 1]}, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable
        kit.assert_equivalent(model, {group.id: [2, 3]})

    def test_resize_scaling_channels_is_opaque(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 4, name="src")
        empty = b.const(np.zeros(0, F32))
        up = b.op("Resize", [h, empty, b.const(np.array([1, 2, 1, 1], F32))], {"mode": "nearest"}, name="rs")
        model = b.model(b.conv(up, 8, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        assert "it scales the channel axis" in _group_of(analysis, "src").reasons[0]


class TestGemm:
    @pytest.mark.parametrize("trans_b", [0, 1])
    def test_gemm_after_global_pool(self, kit, trans_b: int) -> None:
        b = kit.Builder()
        h = b.op("GlobalAveragePool", [b.op("Relu", [b.conv(b.x, 4, 8, name="src")])])
        flat = b.op("Flatten", [h], {"axis": 1})
        w = b.rng.standard_normal((8, 5)).astype(F32)
        fc1 = b.op("Gemm", [flat, b.const(w.T if trans_b else w), b.const(np.ones(5, F32))], {"transB": trans_b},
                   name="fc1")  # fmt: skip
        fc2 = b.op(
            "Gemm", [b.op("Relu", [fc1]), b.const(b.rng.standard_normal((5, 3)).astype(F32))], name="fc2"
        )
        model = b.model(fc2)
        _, analysis = kit.analysis_of(model)
        conv_group, fc_group = _group_of(analysis, "src"), _group_of(analysis, "fc1")
        assert conv_group.prunable and [m.node for m in conv_group.role("consumer")] == ["fc1"]
        assert fc_group.prunable and fc_group.size == 5
        kit.assert_equivalent(model, {conv_group.id: [0, 6], fc_group.id: [1, 2, 4]})

    def test_reshape_to_matrix(self, kit) -> None:
        b = kit.Builder()
        h = b.op("GlobalAveragePool", [b.conv(b.x, 4, 8, name="src")])
        flat = b.op("Reshape", [h, b.const(np.array([1, 8], np.int64))])
        model = b.model(b.op("Gemm", [flat, b.const(b.rng.standard_normal((8, 3)).astype(F32))], name="fc"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable
        kit.assert_equivalent(model, {group.id: [2, 3, 5]})


class TestOpaque:
    def test_unknown_op_pins_with_reason(self, kit) -> None:
        b = kit.Builder()
        lrn = b.op("LRN", [b.conv(b.x, 4, 8, name="src")], {"size": 3}, name="lrn")
        model = b.model(b.conv(lrn, 8, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert not group.prunable
        assert group.reasons == ["'lrn' (LRN): no channel rule for LRN, so its channels are kept"]

    def test_computed_weights_are_opaque(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 4, name="src")
        w = b.op("Identity", [b.x])  # weights computed at run time
        model = b.model(b.op("Conv", [h, b.op("Slice", [w, b.const(np.array([0])), b.const(np.array([4])),
                                                         b.const(np.array([2]))])],
                              {"kernel_shape": [4, 4]}, name="dyn"))  # fmt: skip
        _, analysis = kit.analysis_of(model)
        assert not _group_of(analysis, "src").prunable

    def test_registry_rejects_duplicates_and_lists_ops(self) -> None:
        with pytest.raises(EdgeSdkInternalError, match="registered twice"):
            coupling("Conv")(lambda node, st: None)
        assert {"Conv", "Concat", "Slice", "BatchNormalization", "Add"} <= set(known_ops())
        assert rule_for("NoSuchOp").__name__ == "opaque"
