"""normalize-resize: constant sizes -> constant scales; Upsample -> Resize."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.export import fix_context
from edgesdk.graph._util import constant_value, producer
from edgesdk.graph.fixes.resize import normalize_resize
from edgesdk.graph.io import to_graph
from edgesdk.graph.parity import check_parity
from edgesdk.graph.pipeline import apply_fixes
from edgesdk.graph.registry import FixContext
from edgesdk.recipe import load_recipe

F32 = np.float32
CTX = FixContext()
NEAREST = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}


def _resize_graph(sizes: list[int], opset: int = 13, roi_empty: bool = True) -> gs.Graph:
    x = gs.Variable("x", dtype=F32, shape=[1, 2, 3, 4])
    y = gs.Variable("y", dtype=F32, shape=sizes)
    roi = gs.Variable.empty() if roi_empty else gs.Constant("roi", np.zeros(0, F32))
    # scales is a required input before opset 13: an empty constant then (as yolov5 exports it)
    scales = gs.Variable.empty() if opset >= 13 else gs.Constant("no_scales", np.zeros(0, F32))
    inputs = [x, roi, scales, gs.Constant("sizes", np.array(sizes, np.int64))]
    node = gs.Node("Resize", name="up", inputs=inputs, outputs=[y], attrs=dict(NEAREST))
    return gs.Graph(nodes=[node], inputs=[x], outputs=[y], opset=opset)


def _feed() -> np.ndarray:
    return np.arange(24, dtype=F32).reshape(1, 2, 3, 4)


class TestSizesToScales:
    @pytest.mark.parametrize("opset", [11, 13])
    def test_constant_sizes_become_scales(self, run, opset: int) -> None:
        graph = _resize_graph([1, 2, 6, 8], opset=opset, roi_empty=opset >= 13)
        before = run(graph, x=_feed())["y"]
        normalize_resize(graph, CTX)
        node = graph.nodes[0]
        assert len(node.inputs) == 3
        np.testing.assert_array_equal(constant_value(node.inputs[2]), [1, 1, 2, 2])
        after = run(graph, x=_feed())["y"]
        assert after.shape == (1, 2, 6, 8)
        np.testing.assert_array_equal(after, before)

    def test_unreachable_sizes_are_kept(self, run) -> None:
        graph = _resize_graph([1, 2, 5, 7])  # 3 * float32(5/3) is 4.9999998 in double: floors to 4
        normalize_resize(graph, CTX)
        assert len(graph.nodes[0].inputs) == 4
        assert run(graph, x=_feed())["y"].shape == (1, 2, 5, 7)

    def test_computed_sizes_are_kept(self) -> None:
        graph = _resize_graph([1, 2, 6, 8])
        node = graph.nodes[0]
        computed = gs.Variable("computed", dtype=np.int64)
        graph.nodes.insert(0, gs.Node("Abs", inputs=[node.inputs[3]], outputs=[computed]))
        node.inputs[3] = computed
        normalize_resize(graph, CTX)
        assert node.inputs[3] is computed


def _upsample_graph(mode: str, opset: int) -> gs.Graph:
    x = gs.Variable("x", dtype=F32, shape=[1, 2, 3, 4])
    y = gs.Variable("y", dtype=F32, shape=[1, 2, 6, 8])
    scales = gs.Constant("scales", np.array([1, 1, 2, 2], F32))
    node = gs.Node("Upsample", name="up", inputs=[x, scales], outputs=[y], attrs={"mode": mode})
    return gs.Graph(nodes=[node], inputs=[x], outputs=[y], opset=opset)


class TestUpsample:
    @pytest.mark.parametrize("mode", ["nearest", "linear"])
    def test_opset9_graph_is_converted(self, run, mode: str) -> None:
        graph = _upsample_graph(mode, 9)
        before = run(graph, x=_feed())["y"]
        graph = normalize_resize(graph, CTX)
        assert graph.opset == 11
        assert [n.op for n in graph.nodes if n.op != "Constant"] == ["Resize"]
        resize = next(n for n in graph.nodes if n.op == "Resize")
        assert resize.attrs["coordinate_transformation_mode"] == "asymmetric"
        np.testing.assert_allclose(run(graph, x=_feed())["y"], before, atol=1e-6)

    @pytest.mark.parametrize("opset", [10, 11])
    def test_newer_opset_is_rewritten_in_place(self, run, opset: int) -> None:
        graph = _upsample_graph("nearest", opset)
        reference = run(_upsample_graph("nearest", 9), x=_feed())["y"]
        normalize_resize(graph, CTX)
        assert [n.op for n in graph.nodes] == ["Resize"] and graph.opset == opset
        np.testing.assert_array_equal(run(graph, x=_feed())["y"], reference)


def test_yolov5n_resize_gets_constant_scales(recipe_model, image_feeds) -> None:
    recipe = load_recipe("yolov5n")
    model = recipe_model(recipe)
    fixes: list[tuple[str, dict[str, Any]]] = [
        ("static-shape", {}),
        ("fold-constants", {}),
        ("normalize-resize", {}),
        ("cleanup", {}),
    ]
    fixed, _ = apply_fixes(model, fixes, fix_context(recipe))
    graph = to_graph(fixed)
    resizes = [n for n in graph.nodes if n.op == "Resize"]
    assert len(resizes) == 2
    for node in resizes:
        assert len(node.inputs) == 3
        np.testing.assert_array_equal(constant_value(node.inputs[2]), [1, 1, 2, 2])
        assert not _ancestor_ops(node.inputs[1:]) & {"Shape", "Floor", "Cast", "Concat", "Slice"}
    assert not {n.op for n in graph.nodes} & {"Shape", "Floor", "Cast"}
    result = check_parity(model, fixed, image_feeds(recipe, model), atol=1e-3, rtol=1e-3)
    assert result.passed, result.summary()


def _ancestor_ops(tensors: list[gs.Tensor]) -> set[str]:
    ops: set[str] = set()
    stack = list(tensors)
    while stack:
        node = producer(stack.pop())
        if node is not None:
            ops.add(node.op)
            stack.extend(node.inputs)
    return ops
