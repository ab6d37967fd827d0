"""Channel groups on real detectors (coupling on the graphs users bring) and the analysis API."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.graph.io import to_graph
from edgesdk.slim.groups import analyze, prepare, summarize

F32 = np.float32


def _by_source(analysis, source: str):
    return next(g for g in analysis.groups if source in g.sources)


def _analysis(exported, *args, **kwargs):
    return analyze(prepare(to_graph(exported(*args, **kwargs))))


class TestYoloxNano:
    @pytest.fixture(scope="class")
    def analysis(self, exported):
        return _analysis(exported, "yolox-nano")

    def test_focus_slices_feed_the_stem(self, analysis) -> None:
        images = next(g for g in analysis.groups if g.reasons == ["graph input 'images'"])
        assert sum(m.op == "Slice" for m in images.members) >= 4
        stem = next(m for m in images.members if m.node == "/backbone/backbone/stem/conv/conv/Conv")
        assert list(stem.index) == [0, 1, 2] * 4  # the 4 space-to-depth slices of the same 3 channels
        assert _by_source(analysis, "/backbone/backbone/stem/conv/conv/Conv").prunable

    def test_csp_residuals_share_one_decision(self, analysis) -> None:
        group = _by_source(analysis, "/backbone/backbone/dark3/dark3.1/conv1/conv/Conv")
        assert group.prunable and group.size == 32 and len(group.sources) == 4
        for member in group.role("source"):
            assert list(member.index) == list(range(32))
        assert {m.op for m in group.role("through")} >= {"Add", "Mul", "Sigmoid", "Concat"}

    def test_concat_offsets_into_conv3(self, analysis) -> None:
        conv2 = _by_source(analysis, "/backbone/backbone/dark3/dark3.1/conv2/conv/Conv")
        (consumer,) = conv2.role("consumer")
        assert consumer.node == "/backbone/backbone/dark3/dark3.1/conv3/conv/Conv"
        assert list(consumer.index) == [-1] * 32 + list(range(32))

    def test_spp_maxpools_repeat_channels(self, analysis) -> None:
        group = _by_source(analysis, "/backbone/backbone/dark5/dark5.1/conv1/conv/Conv")
        (consumer,) = group.role("consumer")
        assert list(consumer.index) == list(range(128)) * 4

    def test_depthwise_convs_are_carried(self, analysis) -> None:
        group = _by_source(analysis, "/backbone/backbone/dark2/dark2.1/m/m.0/conv1/conv/Conv")
        assert any(m.op == "Conv" and m.role == "through" for m in group.members)
        assert group.prunable

    def test_head_is_protected(self, analysis) -> None:
        for head in ("/head/cls_preds.0/Conv", "/head/reg_preds.0/Conv"):
            group = _by_source(analysis, head)
            assert (
                not group.prunable
                and "'/head/Transpose' (Transpose): moves the channel axis" in group.reasons[0]
            )
        assert _by_source(analysis, "/head/cls_convs.0/cls_convs.0.0/pconv/conv/Conv").prunable
        assert _by_source(analysis, "/head/stems.0/conv/Conv").prunable


class TestYoloFastest:
    @pytest.fixture(scope="class")
    def analysis(self, exported):
        return _analysis(exported, "yolo-fastest")

    def test_shortcuts(self, analysis) -> None:
        group = _by_source(analysis, "conv_11")
        assert group.sources == ["conv_11", "conv_14", "conv_19"] and group.prunable
        assert len({m.node for m in group.role("through") if m.op == "Add"}) == 2

    def test_depthwise_between_pointwise(self, analysis) -> None:
        group = _by_source(analysis, "conv_12")
        assert {m.node for m in group.role("through") if m.op == "Conv"} == {"conv_13"}  # depthwise
        assert [m.node for m in group.role("consumer")] == ["conv_14"]

    def test_routes_concat(self, analysis) -> None:
        concat_groups = [g for g in analysis.groups if any(m.op == "Concat" for m in g.members) and g.sources]
        assert concat_groups and all(g.prunable for g in concat_groups)
        offsets = [m for g in concat_groups for m in g.role("consumer") if (m.index < 0).any()]
        assert offsets  # a consumer reads the route at an offset

    def test_yolo_heads_feed_outputs(self, analysis) -> None:
        assert _by_source(analysis, "conv_120").reasons == ["feeds graph output 'yolo_0'"]
        assert _by_source(analysis, "conv_129").reasons == ["feeds graph output 'yolo_1'"]

    def test_unfused_bn(self, exported) -> None:
        analysis = _analysis(exported, "yolo-fastest", model__fuse_bn=False)
        group = _by_source(analysis, "conv_12")
        assert any(m.op == "BatchNormalization" for m in group.members)
        assert summarize(analysis)["prunable_groups"] == 36


class TestRetinaFace:
    @pytest.fixture(scope="class")
    def analysis(self, exported):
        return _analysis(exported, "retinaface-mnet")

    def test_fpn_adds_tie_lateral_and_upsampled(self, analysis) -> None:
        fpn = [g for g in analysis.groups if len(g.sources) == 2 and any(m.op == "Resize" for m in g.members)]
        assert len(fpn) == 2 and all(g.prunable and g.size == 64 for g in fpn)
        assert all(any(m.op == "Add" for m in g.members) for g in fpn)

    def test_ssh_concat_offsets(self, analysis) -> None:
        ssh = [g for g in analysis.groups if g.prunable and any(m.op == "Concat" for m in g.members)]
        assert len(ssh) >= 6
        heads = [m for g in ssh for m in g.role("consumer") if (m.index < 0).any()]
        assert heads  # the class/box/landmark heads read each SSH branch at its offset

    def test_heads_protected(self, analysis) -> None:
        heads = [g for g in analysis.groups if g.sources and not g.prunable]
        assert len(heads) == 9 and all("Transpose" in g.reasons[0] for g in heads)


def test_yunet(exported) -> None:
    analysis = _analysis(exported, "yunet")
    counts = summarize(analysis)
    assert counts["prunable_groups"] == 16
    adds = [g for g in analysis.groups if g.prunable and len(g.sources) == 2]
    assert len(adds) == 2  # the two top-down neck additions
    depthwise = [m for g in analysis.prunable() for m in g.role("through") if m.op == "Conv"]
    assert depthwise


@pytest.mark.parametrize("model", [None, "yolov5n_coco/yolov5n_bn_unfused.onnx"])
def test_yolov5n(exported, model: str | None) -> None:
    analysis = _analysis(exported, "yolov5n", model=model)
    head = _by_source(analysis, "/model.24/m.0/Conv")
    assert not head.prunable and "'/model.24/Reshape' (Reshape): folds the channel axis" in head.reasons[0]
    c3 = _by_source(analysis, "/model.6/cv1/conv/Conv")
    assert len(c3.sources) == 4 and c3.prunable
    has_bn = any(m.op == "BatchNormalization" for m in c3.members)
    assert has_bn == (model is not None)
    assert summarize(analysis)["prunable_groups"] == 50


def test_ultraface_bn_kept_after_export(exported) -> None:
    analysis = _analysis(exported, "ultraface-rfb320")
    prunable = analysis.prunable()
    assert len(prunable) == 25
    without_bn = [g.sources[0] for g in prunable if not any(m.op == "BatchNormalization" for m in g.members)]
    assert without_bn == ["Conv_429", "Conv_433"]  # the extra layer after the last stage has no BN


class TestAnalysisApi:
    def test_prepare_names_nodes_and_keeps_io(self) -> None:
        x = gs.Variable("x", F32, [1, 2, 4, 4])
        y = gs.Variable("y", F32)
        graph = gs.Graph(nodes=[gs.Node("Relu", inputs=[x], outputs=[y])], inputs=[x], outputs=[y], opset=13)
        prepare(graph)
        assert graph.nodes[0].name == "Relu_y" and graph.outputs[0].name == "y"
        assert list(graph.outputs[0].shape) == [1, 2, 4, 4]

    def test_keep_masks_and_vector(self, kit) -> None:
        b = kit.Builder()
        a, c = b.conv(b.x, 4, 3, name="a"), b.conv(b.x, 4, 2, name="c")
        model = b.model(b.conv(b.op("Concat", [a, c], {"axis": 1}), 5, 1, name="dst"))
        _, analysis = kit.analysis_of(model)
        ga, gc = _by_source(analysis, "a"), _by_source(analysis, "c")
        masks = analysis.keep_masks({ga.id: [1]})
        concat_mask = next(m for name, m in masks.items() if len(m) == 5)
        assert concat_mask.tolist() == [False, True, False, True, True]
        keep = analysis.keep_vector({ga.id: [1], gc.id: [0]})
        assert keep.sum() == analysis.total - 3
        assert analysis.groups[ga.id].to_json()["consumers"] == ["dst"]
