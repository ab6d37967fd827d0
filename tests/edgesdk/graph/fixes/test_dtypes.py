"""int64-to-int32: only where the ONNX schemas allow it and the values fit."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.export import fix_context
from edgesdk.graph._util import constant_value
from edgesdk.graph.fixes.dtypes import int64_to_int32
from edgesdk.graph.io import to_graph
from edgesdk.graph.parity import check_parity
from edgesdk.graph.pipeline import apply_fixes
from edgesdk.graph.registry import FixContext
from edgesdk.recipe import load_recipe

F32, I64 = np.float32, np.int64
CTX = FixContext()


def _graph(ends: int = 3) -> gs.Graph:
    """x [4, 6] -> Gather(axis 1, idx) -> Slice(starts, ends, axes) -> Reshape(shape) -> y."""
    x = gs.Variable("x", dtype=F32, shape=[4, 6])
    idx = gs.Constant("idx", np.array([0, 2, 4, 5], I64))
    starts, stop, axes = (
        gs.Constant(n, np.array(v, I64)) for n, v in (("starts", [1]), ("ends", [ends]), ("axes", [0]))
    )
    shape = gs.Constant("shape", np.array([-1], I64))
    g, s, y = gs.Variable("g", dtype=F32), gs.Variable("s", dtype=F32), gs.Variable("y", dtype=F32, shape=[8])
    nodes = [
        gs.Node("Gather", inputs=[x, idx], outputs=[g], attrs={"axis": 1}),
        gs.Node("Slice", inputs=[g, starts, stop, axes], outputs=[s]),
        gs.Node("Reshape", inputs=[s, shape], outputs=[y]),
    ]
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=13)


def _dtypes(graph: gs.Graph) -> dict[str, str]:
    return {
        name: str(value.dtype)
        for name, tensor in graph.tensors().items()
        if (value := constant_value(tensor)) is not None and value.dtype.kind == "i"
    }


class TestInt64ToInt32:
    def test_converts_where_the_schema_allows(self, run) -> None:
        graph = _graph()
        feed = np.arange(24, dtype=F32).reshape(4, 6)
        before = run(graph, x=feed)["y"]
        int64_to_int32(graph, CTX)
        assert _dtypes(graph) == {
            "idx": "int32",
            "starts": "int32",
            "ends": "int32",
            "axes": "int32",
            "shape": "int64",
        }
        np.testing.assert_array_equal(run(graph, x=feed)["y"], before)

    def test_values_that_do_not_fit_keep_their_type_mates(self, run) -> None:
        graph = _graph(ends=2**62)  # "to the end": Slice's starts/ends/axes share one type, so none converts
        feed = np.arange(24, dtype=F32).reshape(4, 6)
        graph.outputs[0].shape = [12]
        before = run(graph, x=feed)["y"]
        int64_to_int32(graph, CTX)
        types = _dtypes(graph)
        assert types["idx"] == "int32"
        assert {types["starts"], types["ends"], types["axes"], types["shape"]} == {"int64"}
        np.testing.assert_array_equal(run(graph, x=feed)["y"], before)

    def test_constant_shared_with_an_int64_only_input_stays(self) -> None:
        graph = _graph()
        reshape = graph.nodes[2]
        shared = graph.nodes[0].inputs[1]  # idx [0, 2, 4, 5] also used as a Reshape shape elsewhere
        extra = gs.Variable("r", dtype=F32)
        graph.nodes.append(
            gs.Node("Reshape", inputs=[gs.Constant("z", np.zeros(40, F32)), shared], outputs=[extra])
        )
        int64_to_int32(graph, CTX)
        assert _dtypes(graph)["idx"] == "int64"
        assert reshape.inputs[1].values.dtype == I64

    def test_constant_node_value(self, run) -> None:
        x = gs.Variable("x", dtype=F32, shape=[5])
        idx, y = gs.Variable("idx", dtype=I64), gs.Variable("y", dtype=F32, shape=[2])
        nodes = [
            gs.Node("Constant", outputs=[idx], attrs={"value": gs.Constant("v", np.array([4, 1], I64))}),
            gs.Node("Gather", inputs=[x, idx], outputs=[y]),
        ]
        graph = gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=13)
        int64_to_int32(graph, CTX)
        value = constant_value(idx)
        assert value is not None and value.dtype == np.int32
        np.testing.assert_array_equal(run(graph, x=np.arange(5, dtype=F32))["y"], [4, 1])

    def test_graph_io_never_changes(self) -> None:
        x = gs.Variable("x", dtype=I64, shape=[3])
        c = gs.Constant("c", np.array([1, 2, 3], I64))
        y = gs.Variable("y", dtype=I64, shape=[3])
        graph = gs.Graph(
            nodes=[gs.Node("Add", inputs=[x, c], outputs=[y])], inputs=[x], outputs=[y], opset=13
        )
        int64_to_int32(graph, CTX)
        assert graph.inputs[0].dtype == I64 and c.values.dtype == I64  # Add's T also types x and y

    def test_real_yolov5n(self, recipe_model, image_feeds) -> None:
        recipe = load_recipe("yolov5n")
        model = recipe_model(recipe)
        fixed, applied = apply_fixes(model, [*recipe.fix_list(), ("int64-to-int32", {})], fix_context(recipe))
        assert applied[-1] == "int64-to-int32"
        types = _dtypes(to_graph(fixed))
        assert list(types.values()).count("int32") >= 10  # the head's Slice parameters
        result = check_parity(model, fixed, image_feeds(recipe, model), atol=1e-3, rtol=1e-3)
        assert result.passed, result.summary()
