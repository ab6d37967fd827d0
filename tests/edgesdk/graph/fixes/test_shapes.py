"""static-shape, infer-shapes, fold-constants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import GraphError
from edgesdk.graph.fixes.shapes import fold_constants, infer_shapes, static_shape
from edgesdk.graph.io import load_model, to_graph, to_model
from edgesdk.graph.parity import check_parity
from edgesdk.graph.registry import FixContext

F32 = np.float32


def _conv_graph(in_shape: list[int | str]) -> gs.Graph:
    """x [N,3,H,W] -> Conv 3x3 (4 filters, pad 1) -> Relu -> y."""
    rng = np.random.default_rng(0)
    x = gs.Variable("x", dtype=F32, shape=in_shape)
    w = gs.Constant("w", rng.standard_normal((4, 3, 3, 3)).astype(F32))
    a, y = gs.Variable("a", dtype=F32), gs.Variable("y", dtype=F32, shape=["N", 4, "H", "W"])
    nodes = [
        gs.Node("Conv", inputs=[x, w], outputs=[a], attrs={"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}),
        gs.Node("Relu", inputs=[a], outputs=[y]),
    ]
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=13)


class TestStaticShape:
    def test_pins_input_and_propagates(self, run, rng) -> None:
        graph = _conv_graph(["N", 3, "H", "W"])
        feed = rng.standard_normal((1, 3, 8, 8)).astype(F32)
        before = run(graph, x=feed)["y"]
        static_shape(graph, FixContext(input_shape=(1, 3, 8, 8)))
        assert graph.inputs[0].shape == [1, 3, 8, 8]
        assert list(graph.outputs[0].shape) == [1, 4, 8, 8]
        assert list(graph.tensors()["a"].shape) == [1, 4, 8, 8]
        np.testing.assert_array_equal(run(graph, x=feed)["y"], before)

    def test_param_overrides_context(self) -> None:
        graph = static_shape(
            _conv_graph(["N", 3, "H", "W"]), FixContext(input_shape=(1, 3, 8, 8)), shape=[2, 3, 4, 6]
        )
        assert list(graph.outputs[0].shape) == [2, 4, 4, 6]

    def test_refuses_to_change_a_fixed_dimension(self) -> None:
        with pytest.raises(GraphError, match="fixed at"):
            static_shape(_conv_graph([1, 3, 8, 8]), FixContext(input_shape=(1, 3, 16, 16)))

    def test_force_changes_it(self, run, rng) -> None:
        graph = static_shape(_conv_graph([1, 3, 8, 8]), FixContext(input_shape=(1, 3, 16, 16)), force=True)
        assert list(graph.outputs[0].shape) == [1, 4, 16, 16]
        assert run(graph, x=rng.standard_normal((1, 3, 16, 16)).astype(F32))["y"].shape == (1, 4, 16, 16)

    def test_rank_mismatch_and_missing_shape(self) -> None:
        with pytest.raises(GraphError, match="rank"):
            static_shape(_conv_graph(["N", 3, "H", "W"]), FixContext(), shape=[1, 3, 8])
        with pytest.raises(GraphError, match="needs a shape"):
            static_shape(_conv_graph(["N", 3, "H", "W"]), FixContext())

    def test_unknown_input_name(self) -> None:
        with pytest.raises(GraphError, match="no input named"):
            static_shape(
                _conv_graph(["N", 3, "H", "W"]), FixContext(input_shape=(1, 3, 8, 8), input_name="images")
            )

    def test_real_dynamic_yunet(self, models_dir: Path, rng) -> None:
        model = load_model(models_dir / "yunet_n" / "yunet_n_dynamic.onnx")
        graph = static_shape(to_graph(model), FixContext(input_shape=(1, 3, 320, 320)))
        outs = {t.name: list(t.shape) for t in graph.outputs}
        assert (
            outs["cls_8"] == [1, 1600, 1]
            and outs["bbox_16"] == [1, 400, 4]
            and outs["kps_32"] == [1, 100, 10]
        )
        feed = {"input": rng.uniform(0, 255, (1, 3, 320, 320)).astype(F32)}
        result = check_parity(model, to_model(graph, like=model), [feed], atol=1e-4, rtol=1e-4)
        assert result.passed, result.summary()


class TestInferShapes:
    def test_fills_every_tensor(self) -> None:
        graph = _conv_graph([1, 3, 5, 7])
        graph.outputs[0].shape = None
        infer_shapes(graph, FixContext())
        assert list(graph.tensors()["a"].shape) == [1, 4, 5, 7]
        assert list(graph.outputs[0].shape) == [1, 4, 5, 7]
        assert [n.op for n in graph.nodes] == ["Conv", "Relu"]


class TestFoldConstants:
    def _graph(self) -> gs.Graph:
        """y = Reshape(x + c1*c2, concat(shape(x)[0:1], [-1])): constant math and shape math."""
        x = gs.Variable("x", dtype=F32, shape=[2, 3, 4])
        c1, c2 = gs.Constant("c1", np.full((3, 4), 2.0, F32)), gs.Constant("c2", np.full((3, 4), 0.5, F32))
        prod, added, shape = (
            gs.Variable("prod", dtype=F32),
            gs.Variable("added", dtype=F32),
            gs.Variable("shape"),
        )
        head, target, y = (
            gs.Variable("head"),
            gs.Variable("target"),
            gs.Variable("y", dtype=F32, shape=[2, 12]),
        )
        consts = [
            gs.Constant(n, np.array(v, np.int64)) for n, v in (("s0", [0]), ("s1", [1]), ("minus1", [-1]))
        ]
        nodes = [
            gs.Node("Mul", inputs=[c1, c2], outputs=[prod]),
            gs.Node("Add", inputs=[x, prod], outputs=[added]),
            gs.Node("Shape", inputs=[x], outputs=[shape]),
            gs.Node("Slice", inputs=[shape, consts[0], consts[1]], outputs=[head]),
            gs.Node("Concat", inputs=[head, consts[2]], outputs=[target], attrs={"axis": 0}),
            gs.Node("Reshape", inputs=[added, target], outputs=[y]),
        ]
        return gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=13)

    def test_folds_values_and_shapes(self, run, rng) -> None:
        graph = self._graph()
        feed = rng.standard_normal((2, 3, 4)).astype(F32)
        before = run(graph, x=feed)["y"]
        fold_constants(graph, FixContext())
        assert [n.op for n in graph.nodes] == ["Add", "Reshape"]
        target = graph.nodes[1].inputs[1]
        assert isinstance(target, gs.Constant) and target.values.tolist() == [2, -1]
        after = run(graph, x=feed)["y"]
        assert after.shape == (2, 12)
        np.testing.assert_array_equal(after, before)

    def test_without_shape_folding_keeps_shape_ops(self) -> None:
        graph = fold_constants(self._graph(), FixContext(), fold_shapes=False)
        assert "Shape" in [n.op for n in graph.nodes] and "Mul" not in [n.op for n in graph.nodes]
