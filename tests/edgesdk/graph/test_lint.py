"""lint: what each TensorRT version refuses, on tiny graphs and on the real models."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import GraphError
from edgesdk.export import fix_context
from edgesdk.graph.io import to_model
from edgesdk.graph.lint import LintFinding, lint
from edgesdk.graph.pipeline import apply_fixes
from edgesdk.graph.trt_support import TRT_VERSIONS
from edgesdk.recipe import load_recipe

F32 = np.float32


def _one(
    op: str, inputs: list[gs.Tensor] | None = None, opset: int = 13, domain: str | None = None, **attrs
) -> gs.Graph:
    x = gs.Variable("x", dtype=F32, shape=[1, 3, 8, 8])
    y = gs.Variable("y", dtype=F32, shape=[1, 3, 8, 8])
    node = gs.Node(op, name="n", inputs=[x, *(inputs or [])], outputs=[y], attrs=attrs, domain=domain)
    return gs.Graph(nodes=[node], inputs=[x], outputs=[y], opset=opset)


def _rules(findings: list[LintFinding], severity: str | None = None) -> set[str]:
    return {f.rule for f in findings if severity is None or f.severity == severity}


class TestOps:
    @pytest.mark.parametrize("trt", TRT_VERSIONS)
    @pytest.mark.parametrize("op,domain", [("Unique", None), ("MadeUpOp", None), ("Swish", "com.acme")])
    def test_missing_op_is_an_error_everywhere(self, trt: str, op: str, domain: str | None) -> None:
        findings = lint(_one(op, domain=domain), trt)
        errors = [f for f in findings if f.severity == "error"]
        assert [(f.rule, f.node, f.op) for f in errors] == [("unsupported-op", "n", op)]
        assert f"TensorRT {trt}" in errors[0].message and errors[0].fix

    @pytest.mark.parametrize("trt", TRT_VERSIONS)
    def test_plugins_are_fine(self, trt: str) -> None:
        attrs = dict.fromkeys(("score_threshold", "iou_threshold", "max_output_boxes"), 1)
        attrs.update(background_class=-1, score_activation=0, box_coding=1)
        x = gs.Variable("boxes", dtype=F32, shape=[1, 10, 4])
        s = gs.Variable("scores", dtype=F32, shape=[1, 10, 2])
        outs = [gs.Variable(n, dtype=F32) for n in "abcd"]
        node = gs.Node("EfficientNMS_TRT", name="nms", inputs=[x, s], outputs=outs, attrs=attrs, domain="TRT")
        graph = gs.Graph(nodes=[node], inputs=[x, s], outputs=outs, opset=13)
        assert not _rules(lint(graph, trt), "error")
        del node.attrs["box_coding"]
        assert _rules(lint(graph, trt), "error") == {"plugin"}

    def test_layer_norm_needs_86(self) -> None:
        graph = _one("LayerNormalization", [gs.Constant("g", np.ones(8, F32))], opset=17)
        assert _rules(lint(graph, "8.5"), "error") == {"unsupported-op"}
        assert not _rules(lint(graph, "8.6"), "error")

    def test_opset_range(self) -> None:
        graph = _one("Relu", opset=18)
        assert _rules(lint(graph, "8.6"), "error") == {"opset"}
        assert not _rules(lint(graph, "10.3"), "error")


class TestRestrictions:
    def test_resize_modes(self) -> None:
        scales = gs.Constant("s", np.array([1, 1, 2, 2], F32))
        cubic = _one("Resize", [gs.Constant("roi", np.zeros(0, F32)), scales], mode="cubic")
        crop = _one(
            "Resize",
            [gs.Constant("roi", np.zeros(0, F32)), scales],
            coordinate_transformation_mode="tf_crop_and_resize",
        )
        for trt in TRT_VERSIONS:
            assert _rules(lint(cubic, trt), "error") == {"resize-mode"}
            assert _rules(lint(crop, trt), "error") == {"resize-mode"}

    def test_dynamic_resize_is_a_warning(self) -> None:
        graph = _one("Resize", [gs.Constant("roi", np.zeros(0, F32))], mode="nearest")
        scales = gs.Variable("scales", dtype=F32)
        graph.nodes.insert(
            0, gs.Node("Abs", inputs=[gs.Constant("raw", np.array([1, 1, 1, 1], F32))], outputs=[scales])
        )
        graph.nodes[1].inputs.append(scales)
        findings = lint(graph, "8.5")
        assert "dynamic-resize" in _rules(findings, "warning") and not _rules(findings, "error")

    def test_non_constant_slice_axes(self) -> None:
        x = gs.Variable("x", dtype=F32, shape=[4, 4])
        axes, y = gs.Variable("axes", dtype=np.int64, shape=[1]), gs.Variable("y", dtype=F32, shape=[2, 4])
        consts = [gs.Constant(n, np.array([v], np.int64)) for n, v in (("st", 0), ("en", 2))]
        node = gs.Node("Slice", name="sl", inputs=[x, *consts, axes], outputs=[y])
        graph = gs.Graph(nodes=[node], inputs=[x, axes], outputs=[y], opset=13)
        assert _rules(lint(graph, "8.6"), "error") == {"non-constant-input"}
        assert not _rules(lint(graph, "10.3"), "error")  # tensor axes for Slice since 10.3

    def test_documented_restrictions(self) -> None:
        weights = [gs.Constant("W", np.ones((1, 8, 8), F32)), gs.Constant("R", np.ones((1, 8, 2), F32))]
        lstm = _one("LSTM", weights, hidden_size=2, input_forget=1)
        assert _rules(lint(lstm, "10.3"), "error") == {"restriction"}  # input_forget must be 0 (10.x docs)
        assert not _rules(lint(lstm, "8.5"), "error")

    def test_maxpool_indices(self) -> None:
        graph = _one("MaxPool", kernel_shape=[2, 2])
        idx = gs.Variable("idx", dtype=np.int64)
        graph.nodes[0].outputs.append(idx)
        graph.outputs.append(idx)
        assert "restriction" in _rules(lint(graph, "8.5"), "error")


class TestModelLevel:
    def test_dynamic_input_and_int64(self) -> None:
        graph = _one("Reshape", [gs.Constant("shape", np.array([1, 3, 8, 8], np.int64))])
        graph.inputs[0].shape = ["N", 3, 8, 8]
        assert {"dynamic-shape", "int64-weights"} <= _rules(lint(graph, "8.5"), "warning")
        assert "int64-weights" not in _rules(lint(graph, "10.3"))

    def test_graph_is_not_modified(self) -> None:
        graph = _one("Relu")
        graph.outputs[0].shape = None
        lint(graph, "8.5")
        assert graph.outputs[0].shape is None

    def test_unknown_version(self) -> None:
        with pytest.raises(GraphError):
            lint(_one("Relu"), "7.1")


class TestRealModels:
    def test_yolov5n_findings_removed_by_fixes(self, recipe_model) -> None:
        recipe = load_recipe("yolov5n")
        model = recipe_model(recipe)
        before = lint(model, "8.5")
        assert {"dynamic-resize", "foldable-shape", "int64"} <= _rules(before, "warning")
        assert {f.node for f in before if f.rule == "dynamic-resize"} == {
            "/model.11/Resize",
            "/model.15/Resize",
        }
        fixed, _ = apply_fixes(model, recipe.fix_list(), fix_context(recipe))
        after = lint(fixed, "8.5")
        assert not _rules(after) & {"dynamic-resize", "foldable-shape", "int64"}
        assert len(after) < len(before)

    def test_ultraface_initializer_inputs(self, recipe_model) -> None:
        recipe = load_recipe("ultraface-rfb320")
        model = recipe_model(recipe)
        assert "initializer-input" in _rules(lint(model, "10.3"))
        fixed, _ = apply_fixes(model, recipe.fix_list(), fix_context(recipe))
        assert "initializer-input" not in _rules(lint(fixed, "10.3"))

    @pytest.mark.parametrize(
        "name", ["yolov5n", "yolox-nano", "retinaface-mnet", "yunet", "ultraface-rfb320"]
    )
    def test_fixed_models_have_no_errors(self, name: str, recipe_model) -> None:
        recipe = load_recipe(name)
        fixed, _ = apply_fixes(recipe_model(recipe), recipe.fix_list(), fix_context(recipe))
        for trt in TRT_VERSIONS:
            assert not _rules(lint(fixed, trt), "error"), trt

    def test_model_input(self) -> None:
        model = to_model(_one("Unique"))
        assert _rules(lint(model, "10.3"), "error") == {"unsupported-op"}
