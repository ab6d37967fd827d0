"""cleanup, drop-initializer-inputs, strip-identity, rename-outputs on tiny graphs (and one real model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesdk.errors import GraphError
from edgesdk.graph.fixes.basic import cleanup, drop_initializer_inputs, rename_outputs, strip_identity
from edgesdk.graph.io import load_model, to_graph, to_model
from edgesdk.graph.parity import check_parity
from edgesdk.graph.pipeline import apply_fixes
from edgesdk.graph.registry import FixContext

CTX = FixContext()
F32 = np.float32


def _var(name: str, shape: list[int] | None = None) -> gs.Variable:
    return gs.Variable(name, dtype=F32, shape=shape)


def _graph(
    nodes: list[gs.Node], inputs: list[gs.Tensor], outputs: list[gs.Tensor], opset: int = 13
) -> gs.Graph:
    return gs.Graph(nodes=nodes, inputs=inputs, outputs=outputs, opset=opset)


class TestCleanup:
    def test_removes_dead_nodes_keeps_io(self, run, rng) -> None:
        x, a, dead, y = _var("x", [1, 4]), _var("a"), _var("dead"), _var("y", [1, 4])
        nodes = [
            gs.Node("Relu", inputs=[x], outputs=[a]),
            gs.Node("Sigmoid", inputs=[x], outputs=[dead]),
            gs.Node("Neg", inputs=[a], outputs=[y]),
        ]
        graph = _graph(nodes, [x], [y])
        feed = rng.standard_normal((1, 4)).astype(F32)
        before = run(graph, x=feed)["y"]
        cleanup(graph, CTX)
        assert [n.op for n in graph.nodes] == ["Relu", "Neg"]
        assert [t.name for t in graph.inputs] == ["x"] and [t.name for t in graph.outputs] == ["y"]
        np.testing.assert_array_equal(run(graph, x=feed)["y"], before)


def _ir3_style_model() -> onnx.ModelProto:
    """y = x * w + b with w and b listed as graph inputs too (old exporters)."""
    w = numpy_helper.from_array(np.arange(4, dtype=F32).reshape(1, 4), "w")
    b = numpy_helper.from_array(np.ones((1, 4), F32), "b")
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 4]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4]),
    ]
    nodes = [helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, out, [w, b]), opset_imports=[helper.make_opsetid("", 9)]
    )
    model.ir_version = 4
    return model


class TestDropInitializerInputs:
    def test_tiny_model(self, run) -> None:
        model = _ir3_style_model()
        graph = to_graph(model)
        assert [t.name for t in graph.inputs] == ["x", "w", "b"]
        assert isinstance(graph.inputs[1], gs.Constant)
        feed = np.full((1, 4), 2.0, F32)
        before = run(model, x=feed)["y"]
        drop_initializer_inputs(graph, CTX)
        assert [t.name for t in graph.inputs] == ["x"]
        fixed = to_model(graph, like=model)
        assert [i.name for i in fixed.graph.input] == ["x"]
        assert sorted(i.name for i in fixed.graph.initializer) == ["b", "w"]
        np.testing.assert_array_equal(run(fixed, x=feed)["y"], before)
        np.testing.assert_array_equal(before, [[1.0, 3.0, 5.0, 7.0]])

    def test_roundtrip_keeps_initializer_inputs_without_the_fix(self) -> None:
        model = _ir3_style_model()
        again = to_model(to_graph(model), like=model)
        assert [i.name for i in again.graph.input] == ["x", "w", "b"]

    def test_ultraface_rfb320(self, models_dir: Path) -> None:
        model = load_model(models_dir / "ultra_light_face_1mb" / "version-RFB-320.onnx")
        assert len(model.graph.input) == 245
        fixed, applied = apply_fixes(model, [("drop-initializer-inputs", {})], CTX)
        assert applied == ["drop-initializer-inputs"]
        assert [i.name for i in fixed.graph.input] == ["input"]
        x = np.random.default_rng(1).standard_normal((1, 3, 240, 320)).astype(F32)
        # onnxruntime cannot pre-fuse BN with weights that are overridable inputs: float rounding only
        result = check_parity(model, fixed, [{"input": x}], atol=1e-5, rtol=0)
        assert result.passed, result.summary()


class TestStripIdentity:
    def test_middle_identity_removed(self, run, rng) -> None:
        x, a, b, y = _var("x", [2, 3]), _var("a"), _var("b"), _var("y", [2, 3])
        nodes = [
            gs.Node("Relu", inputs=[x], outputs=[a]),
            gs.Node("Identity", inputs=[a], outputs=[b]),
            gs.Node("Sigmoid", inputs=[b], outputs=[y]),
        ]
        graph = _graph(nodes, [x], [y])
        feed = rng.standard_normal((2, 3)).astype(F32)
        before = run(graph, x=feed)["y"]
        strip_identity(graph, CTX).cleanup()
        assert [n.op for n in graph.nodes] == ["Relu", "Sigmoid"]
        np.testing.assert_array_equal(run(graph, x=feed)["y"], before)

    def test_identity_feeding_graph_output_keeps_the_name(self, run, rng) -> None:
        x, a, y, z = _var("x", [2, 3]), _var("a"), _var("y", [2, 3]), _var("z", [2, 3])
        nodes = [
            gs.Node("Relu", inputs=[x], outputs=[a]),
            gs.Node("Identity", inputs=[a], outputs=[y]),
            gs.Node("Neg", inputs=[a], outputs=[z]),  # a second reader of the Identity's input
        ]
        graph = _graph(nodes, [x], [y, z])
        feed = rng.standard_normal((2, 3)).astype(F32)
        before = run(graph, x=feed)
        strip_identity(graph, CTX).cleanup()
        assert [n.op for n in graph.nodes] == ["Relu", "Neg"]
        assert [t.name for t in graph.outputs] == ["y", "z"]
        assert graph.nodes[0].outputs[0].name == "y"
        after = run(graph, x=feed)
        for name in ("y", "z"):
            np.testing.assert_array_equal(after[name], before[name])

    def test_input_to_output_identity_stays(self, run) -> None:
        x, y = _var("x", [2]), _var("y", [2])
        graph = _graph([gs.Node("Identity", inputs=[x], outputs=[y])], [x], [y])
        strip_identity(graph, CTX).cleanup()
        assert [n.op for n in graph.nodes] == ["Identity"]
        np.testing.assert_array_equal(run(graph, x=np.ones(2, F32))["y"], [1, 1])

    def test_inference_dropout_removed_mask_dropout_kept(self, run, rng) -> None:
        x, a, b, y = _var("x", [4]), _var("a"), _var("b"), _var("y", [4])
        mask, m2 = gs.Variable("mask", dtype=np.bool_), _var("m2")
        nodes = [
            gs.Node("Dropout", inputs=[x], outputs=[a], attrs={}),
            gs.Node("Dropout", inputs=[a], outputs=[b, mask]),
            gs.Node("Where", inputs=[mask, b, a], outputs=[m2]),
            gs.Node("Relu", inputs=[m2], outputs=[y]),
        ]
        graph = _graph(nodes, [x], [y])
        feed = rng.standard_normal(4).astype(F32)
        before = run(graph, x=feed)["y"]
        strip_identity(graph, CTX).cleanup()
        assert [n.op for n in graph.nodes] == ["Dropout", "Where", "Relu"]
        np.testing.assert_array_equal(run(graph, x=feed)["y"], before)

    def test_training_mode_dropout_kept(self) -> None:
        x, y = _var("x", [4]), _var("y", [4])
        on = gs.Constant("training", np.array(True))
        graph = _graph(
            [gs.Node("Dropout", inputs=[x, gs.Constant("ratio", np.array(0.5, F32)), on], outputs=[y])],
            [x],
            [y],
        )
        strip_identity(graph, CTX)
        assert [n.op for n in graph.nodes] == ["Dropout"]


class TestRenameOutputs:
    def _graph(self) -> gs.Graph:
        x, y, z = _var("x", [3]), _var("y", [3]), _var("z", [3])
        return _graph(
            [gs.Node("Relu", inputs=[x], outputs=[y]), gs.Node("Neg", inputs=[y], outputs=[z])], [x], [y, z]
        )

    def test_rename(self, run) -> None:
        graph = rename_outputs(self._graph(), CTX, y="relu_out")
        assert [t.name for t in graph.outputs] == ["relu_out", "z"]
        out = run(graph, x=np.array([-1, 0, 2], F32))
        np.testing.assert_array_equal(out["relu_out"], [0, 0, 2])
        np.testing.assert_array_equal(out["z"], [0, 0, -2])

    def test_unknown_output(self) -> None:
        with pytest.raises(GraphError, match="not a graph output"):
            rename_outputs(self._graph(), CTX, nope="a")

    def test_name_taken(self) -> None:
        with pytest.raises(GraphError, match="a tensor has that name"):
            rename_outputs(self._graph(), CTX, y="x")

    def test_through_pipeline_with_params(self) -> None:
        model = to_model(self._graph())
        fixed, applied = apply_fixes(model, [("rename-outputs", {"z": "scores"})], CTX)
        assert applied == ["rename-outputs"]
        assert [o.name for o in fixed.graph.output] == ["y", "scores"]
