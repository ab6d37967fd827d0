"""Coupling rules for layout ops (Concat, Split, Slice, Reshape, Transpose, ...) on tiny graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

F32 = np.float32
I64 = np.int64


def _group_of(analysis, source: str):
    return next(g for g in analysis.groups if source in g.sources)


class TestConcat:
    def test_consumer_sees_each_group_at_its_offset(self, kit) -> None:
        b = kit.Builder()
        a = b.conv(b.x, 4, 3, name="a")
        c = b.conv(b.x, 4, 5, name="c")
        cat = b.op("Concat", [a, b.op("MaxPool", [c], {"kernel_shape": [1, 1]})], {"axis": 1})
        model = b.model(b.conv(cat, 8, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        ga, gc = _group_of(analysis, "a"), _group_of(analysis, "c")
        consumer_a = next(m for m in ga.role("consumer"))
        consumer_c = next(m for m in gc.role("consumer"))
        assert list(consumer_a.index) == [0, 1, 2, -1, -1, -1, -1, -1]
        assert list(consumer_c.index) == [-1, -1, -1, 0, 1, 2, 3, 4]
        kit.assert_equivalent(model, {ga.id: [2], gc.id: [0, 3]})

    def test_concat_of_a_concat_and_a_residual(self, kit) -> None:
        """Add(Concat(a, c), e): e's channels are tied to a's and c's by offset."""
        b = kit.Builder()
        a, c, e = b.conv(b.x, 4, 3, name="a"), b.conv(b.x, 4, 5, name="c"), b.conv(b.x, 4, 8, name="e")
        s = b.op("Add", [b.op("Concat", [a, c], {"axis": 1}), e])
        model = b.model(b.conv(s, 8, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "e")
        assert set(group.sources) == {"a", "c", "e"} and group.size == 8 and group.prunable
        kit.assert_equivalent(model, {group.id: [0, 4, 7]})

    def test_concat_on_spatial_axis_ties_channels(self, kit) -> None:
        b = kit.Builder()
        a, c = b.conv(b.x, 4, 6, name="a"), b.conv(b.x, 4, 6, name="c")
        model = b.model(b.conv(b.op("Concat", [a, c], {"axis": 2}), 6, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "a")
        assert group.sources == ["a", "c"] and group.size == 6
        kit.assert_equivalent(model, {group.id: [1, 5]})

    def test_constant_concat_input_is_pinned(self, kit) -> None:
        b = kit.Builder()
        a = b.conv(b.x, 4, 3, name="a")
        cat = b.op("Concat", [a, b.const(np.ones((1, 2, 8, 8), F32))], {"axis": 1}, name="cat")
        model = b.model(b.conv(cat, 5, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        assert _group_of(analysis, "a").prunable
        kit.assert_equivalent(model, {_group_of(analysis, "a").id: [0, 2]})


class TestSplit:
    @pytest.mark.parametrize("opset", [11, 13, 18])
    def test_split_sizes_follow(self, kit, opset: int) -> None:
        b = kit.Builder(opset=opset)
        h = b.conv(b.x, 4, 8, name="src")
        if opset < 13:
            left, right = b.op("Split", [h], {"axis": 1, "split": [3, 5]}, outputs=2, name="split")
        elif opset < 18:
            left, right = b.op(
                "Split", [h, b.const(np.array([3, 5], I64))], {"axis": 1}, outputs=2, name="split"
            )
        else:
            left, right = b.op("Split", [h], {"axis": 1, "num_outputs": 2}, outputs=2, name="split")
        model = b.model(b.conv(left, 3 if opset < 18 else 4, 2, name="l"),
                        b.conv(right, 5 if opset < 18 else 4, 2, name="r"))  # fmt: skip
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable and len(group.segments) == 2
        assert [s.tolist() for s in group.segments] == ([[0, 1, 2], [3, 4, 5, 6, 7]] if opset < 18 else
                                                         [[0, 1, 2, 3], [4, 5, 6, 7]])  # fmt: skip
        kit.assert_equivalent(model, {group.id: [1, 6]})

    def test_split_on_spatial_axis(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 6, name="src")
        top, bottom = b.op("Split", [h, b.const(np.array([4, 4], I64))], {"axis": 2}, outputs=2)
        model = b.model(b.conv(b.op("Add", [top, bottom]), 6, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable and not group.segments
        kit.assert_equivalent(model, {group.id: [0, 5]})


class TestSlice:
    @pytest.mark.parametrize(("start", "end"), [(2, 6), (-6, -1), (5, 100)])
    def test_channel_slice_bounds_follow(self, kit, start: int, end: int) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 8, name="src")
        part = b.op("Slice", [h, b.const(np.array([start], I64)), b.const(np.array([end], I64)),
                              b.const(np.array([1], I64))], name="slice")  # fmt: skip
        width = len(range(8)[start:end])
        model = b.model(b.conv(part, width, 2, name="dst"), b.conv(h, 8, 2, name="all"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert [s.tolist() for s in group.segments] == [list(range(8)[start:end])]
        kept = [0, 7, *list(range(8)[start:end])[1:2]]
        kit.assert_equivalent(model, {group.id: sorted(set(kept))})

    def test_focus_spatial_slices_pass_through(self, kit) -> None:
        """YOLOv5/YOLOX Focus: four strided spatial slices concatenated on channels."""
        b = kit.Builder()
        h = b.conv(b.x, 4, 6, name="src")
        parts = []
        for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1)):
            parts.append(b.op("Slice", [h, b.const(np.array([dy, dx], I64)), b.const(np.array([8, 8], I64)),
                                        b.const(np.array([2, 3], I64)), b.const(np.array([2, 2], I64))]))  # fmt: skip
        model = b.model(b.conv(b.op("Concat", parts, {"axis": 1}), 24, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        consumer = group.role("consumer")[0]
        assert list(consumer.index) == list(range(6)) * 4 and not group.segments
        kit.assert_equivalent(model, {group.id: [0, 3, 4]})

    def test_strided_channel_slice_is_opaque(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 8, name="src")
        part = b.op("Slice", [h, b.const(np.array([0], I64)), b.const(np.array([8], I64)),
                              b.const(np.array([1], I64)), b.const(np.array([2], I64))], name="strided")  # fmt: skip
        _, analysis = kit.analysis_of(b.model(b.conv(part, 4, 2)))
        assert "strided slice" in _group_of(analysis, "src").reasons[0]


class TestReshapeTranspose:
    def test_detection_head_reshape_is_protected(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.op("Relu", [b.conv(b.x, 4, 8, name="neck")]), 8, 3 * 6, k=1, name="head")
        r = b.op("Reshape", [h, b.const(np.array([1, 3, 6, 8, 8], I64))], name="head_reshape")
        model = b.model(b.op("Transpose", [r], {"perm": [0, 1, 3, 4, 2]}))
        _, analysis = kit.analysis_of(model)
        head = _group_of(analysis, "head")
        assert not head.prunable and "'head_reshape' (Reshape): folds the channel axis" in head.reasons[0]
        assert _group_of(analysis, "neck").prunable
        kit.assert_equivalent(model, {_group_of(analysis, "neck").id: [2, 3]})

    def test_spatial_reshape_and_channel_keeping_transpose(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 6, name="src")
        flat = b.op("Reshape", [h, b.const(np.array([1, 6, 64], I64))])
        back = b.op(
            "Reshape", [b.op("Transpose", [flat], {"perm": [0, 1, 2]}), b.const(np.array([0, -1, 8, 8], I64))]
        )
        model = b.model(b.conv(back, 6, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable
        kit.assert_equivalent(model, {group.id: [0, 1, 4]})

    def test_channel_moving_transpose_is_protected(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 6, name="src")
        model = b.model(b.op("Transpose", [h], {"perm": [0, 2, 3, 1]}, name="nhwc"))
        _, analysis = kit.analysis_of(model)
        assert "'nhwc' (Transpose): moves the channel axis" in _group_of(analysis, "src").reasons[0]

    def test_unsqueeze_squeeze_reduce(self, kit) -> None:
        b = kit.Builder()
        h = b.conv(b.x, 4, 6, name="src")
        pooled = b.op("ReduceMean", [h], {"axes": [2, 3], "keepdims": 0})  # [1, 6]
        back = b.op("Unsqueeze", [pooled, b.const(np.array([2, 3], I64))])  # [1, 6, 1, 1]
        squeezed = b.op("Squeeze", [back, b.const(np.array([3], I64))])  # [1, 6, 1]
        again = b.op("Unsqueeze", [squeezed, b.const(np.array([3], I64))])
        model = b.model(b.conv(b.op("Mul", [h, again]), 6, 2, name="dst"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert group.prunable
        kit.assert_equivalent(model, {group.id: [1, 2, 3]})

    @pytest.mark.parametrize(("op", "attrs"), [("Softmax", {"axis": 1}), ("Flatten", {"axis": 1}),
                                               ("ReduceMean", {"axes": [1]})])  # fmt: skip
    def test_cross_channel_layout_ops_are_protected(self, kit, op: str, attrs: dict) -> None:
        b = kit.Builder()
        model = b.model(b.op(op, [b.conv(b.x, 4, 6, name="src")], attrs, name="mixer"))
        _, analysis = kit.analysis_of(model)
        group = _group_of(analysis, "src")
        assert not group.prunable and any("'mixer'" in r for r in group.reasons)


def test_slice_opset9_attributes(kit) -> None:
    b = kit.Builder(opset=9)
    w = b.const(b.rng.standard_normal((8, 4, 1, 1)).astype(F32))
    h = b.op("Conv", [b.x, w], {"kernel_shape": [1, 1]}, name="src")
    part = b.op("Slice", [h], {"starts": [1], "ends": [7], "axes": [1]}, name="slice")
    w2 = b.const(b.rng.standard_normal((2, 6, 1, 1)).astype(F32))
    model = b.model(b.op("Conv", [part, w2], {"kernel_shape": [1, 1]}, name="dst"))
    _, analysis = kit.analysis_of(model)
    group = _group_of(analysis, "src")
    pruned = kit.assert_equivalent(model, {group.id: [0, 2, 3, 7]})
    node = next(n for n in pruned.graph.node if n.name == "slice")
    attrs = {a.name: list(a.ints) for a in node.attribute}
    assert attrs["starts"] == [1] and attrs["ends"] == [3]
    assert isinstance(pruned, onnx.ModelProto)
