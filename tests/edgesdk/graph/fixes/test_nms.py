"""efficient-nms: decode (checked on onnxruntime by cutting before the plugin) + plugin node."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import GraphError
from edgesdk.export import fix_context
from edgesdk.graph.fixes.nms import NMS_OUTPUTS, efficient_nms
from edgesdk.graph.io import run_onnxruntime, to_graph, to_model
from edgesdk.graph.lint import lint
from edgesdk.graph.pipeline import apply_fixes
from edgesdk.graph.registry import FixContext
from edgesdk.recipe import load_recipe

F32 = np.float32


def _cut_before_plugin(model: onnx.ModelProto) -> tuple[onnx.ModelProto, gs.Node]:
    """The graph up to the plugin's inputs (boxes, scores), runnable on onnxruntime."""
    graph = to_graph(model)
    plugin = next(n for n in graph.nodes if n.op == "EfficientNMS_TRT")
    graph.outputs = list(plugin.inputs)
    graph.nodes.remove(plugin)
    graph.cleanup()
    return to_model(graph), plugin


def _fixed(name: str, recipe_model) -> tuple[onnx.ModelProto, onnx.ModelProto, object]:
    recipe = load_recipe(name)
    model = recipe_model(recipe)
    fixed, applied = apply_fixes(model, [*recipe.fix_list(), ("efficient-nms", {})], fix_context(recipe))
    assert applied[-1] == "efficient-nms"
    return model, fixed, recipe


def _check_plugin(fixed: onnx.ModelProto, recipe) -> gs.Node:
    onnx.checker.check_model(fixed)  # the TRT domain keeps the model valid ONNX
    out = {o.name: o for o in fixed.graph.output}
    assert list(out) == list(NMS_OUTPUTS)
    top = recipe.postprocess.max_detections
    dims = {n: [d.dim_value for d in o.type.tensor_type.shape.dim] for n, o in out.items()}
    assert dims == {
        "num_detections": [1, 1],
        "detection_boxes": [1, top, 4],
        "detection_scores": [1, top],
        "detection_classes": [1, top],
    }
    types = {n: o.type.tensor_type.elem_type for n, o in out.items()}
    assert types["num_detections"] == types["detection_classes"] == onnx.TensorProto.INT32
    assert types["detection_boxes"] == types["detection_scores"] == onnx.TensorProto.FLOAT
    node = next(n for n in to_graph(fixed).nodes if n.op == "EfficientNMS_TRT")
    post = recipe.postprocess
    assert node.attrs == {
        "plugin_version": "1",
        "background_class": -1,
        "max_output_boxes": top,
        "score_threshold": pytest.approx(post.conf_threshold),
        "iou_threshold": pytest.approx(post.iou_threshold),
        "score_activation": 0,
        "class_agnostic": int(post.class_agnostic),
        "box_coding": 1,
    }
    assert node.domain == "TRT"
    return node


class TestYolov5:
    def test_decode_and_plugin(self, recipe_model, image_feeds) -> None:
        model, fixed, recipe = _fixed("yolov5n", recipe_model)
        _check_plugin(fixed, recipe)
        cut, plugin = _cut_before_plugin(fixed)
        feed = image_feeds(recipe, model)[0]
        raw = run_onnxruntime(model, feed)["output0"]
        decoded = run_onnxruntime(cut, feed)
        boxes, scores = (decoded[t.name] for t in plugin.inputs)
        assert boxes.shape == (1, 25200, 4) and scores.shape == (1, 25200, 80)
        np.testing.assert_allclose(boxes, raw[..., :4], atol=1e-4)
        np.testing.assert_allclose(scores, raw[..., 5:] * raw[..., 4:5], atol=1e-6)
        assert scores.max() > 0.5  # the bus image has confident detections

    def test_lint_accepts_the_plugin(self, recipe_model) -> None:
        _, fixed, _ = _fixed("yolov5n", recipe_model)
        for trt in ("8.5", "8.6", "10.3"):
            assert not [f for f in lint(fixed, trt) if f.severity == "error"], trt


def _yolox_reference(raw: np.ndarray, size: int, strides=(8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Independent numpy YOLOX decode (loops over the grid)."""
    centers = []
    for s in strides:
        n = size // s
        for y in range(n):
            for x in range(n):
                centers.append((x, y, s))
    grid = np.array(centers, F32)
    xy = (raw[0, :, 0:2] + grid[:, 0:2]) * grid[:, 2:3]
    wh = np.exp(raw[0, :, 2:4]) * grid[:, 2:3]
    scores = raw[0, :, 5:] * raw[0, :, 4:5]
    return np.concatenate([xy, wh], axis=1)[None], scores[None]


class TestYolox:
    def test_decode_and_plugin(self, recipe_model, image_feeds) -> None:
        model, fixed, recipe = _fixed("yolox-nano", recipe_model)
        _check_plugin(fixed, recipe)
        cut, plugin = _cut_before_plugin(fixed)
        feed = {k: v * 255.0 for k, v in image_feeds(recipe, model)[1].items()}  # YOLOX takes 0..255
        raw = run_onnxruntime(model, feed)["output"]
        decoded = run_onnxruntime(cut, feed)
        boxes, scores = (decoded[t.name] for t in plugin.inputs)
        ref_boxes, ref_scores = _yolox_reference(raw, 416)
        assert boxes.shape == (1, 3549, 4)
        np.testing.assert_allclose(boxes, ref_boxes, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
        best = int(np.argmax(scores[0].max(axis=1)))
        assert scores[0, best].max() > 0.5 and 0 < boxes[0, best, 2] < 416


class TestErrors:
    def _graph(self, outputs: int = 1) -> gs.Graph:
        x = gs.Variable("x", dtype=F32, shape=[1, 10, 85])
        outs = [gs.Variable(f"y{i}", dtype=F32, shape=[1, 10, 85]) for i in range(outputs)]
        nodes = [gs.Node("Identity", inputs=[x], outputs=[o]) for o in outs]
        return gs.Graph(nodes=nodes, inputs=[x], outputs=outs, opset=13)

    def test_unsupported_decoder(self) -> None:
        with pytest.raises(GraphError, match="cannot decode 'retinaface'"):
            efficient_nms(self._graph(), FixContext(postprocess={"decoder": "retinaface"}))

    def test_ambiguous_output(self) -> None:
        with pytest.raises(GraphError, match="say which one"):
            efficient_nms(self._graph(2), FixContext(postprocess={"decoder": "yolov5"}))

    def test_yolox_grid_mismatch(self) -> None:
        ctx = FixContext(input_shape=(1, 3, 64, 64), postprocess={"decoder": "yolox", "strides": [8, 16, 32]})
        with pytest.raises(GraphError, match="give 84 rows"):
            efficient_nms(self._graph(), ctx)

    def test_tiny_yolov5_attrs_follow_context(self) -> None:
        ctx = FixContext(postprocess={"decoder": "yolov5", "conf_threshold": 0.4, "iou_threshold": 0.6,
                                      "max_detections": 50, "class_agnostic": True})  # fmt: skip
        graph = efficient_nms(self._graph(), ctx, output="y0", domain="")
        node = graph.nodes[-1]
        assert node.attrs["max_output_boxes"] == 50 and node.attrs["class_agnostic"] == 1
        assert node.attrs["score_threshold"] == pytest.approx(0.4) and node.domain is None
        assert [t.shape for t in graph.outputs] == [[1, 1], [1, 50, 4], [1, 50], [1, 50]]
