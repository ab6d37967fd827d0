"""apply_fixes: every shipped ONNX recipe's fix list on its real model, with parity; error wrapping."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import GraphError
from edgesdk.export import fix_context
from edgesdk.graph import registry
from edgesdk.graph.io import model_bytes, to_model
from edgesdk.graph.parity import check_parity
from edgesdk.graph.pipeline import apply_fixes
from edgesdk.graph.registry import FixContext
from edgesdk.recipe import load_recipe

REAL = ["yolov5n", "yolox-nano", "retinaface-mnet", "yunet", "ultraface-rfb320"]


@pytest.mark.parametrize("name", REAL)
def test_recipe_fixes_keep_parity(name: str, recipe_model, image_feeds) -> None:
    recipe = load_recipe(name)
    model = recipe_model(recipe)
    original = model_bytes(model)
    fixed, applied = apply_fixes(model, recipe.fix_list(), fix_context(recipe))
    assert applied == [n for n, _ in recipe.fix_list()]
    assert model_bytes(model) == original  # the input model is untouched
    onnx.checker.check_model(fixed)
    inits = {i.name for i in fixed.graph.initializer}
    real_inputs = [i for i in fixed.graph.input if i.name not in inits]
    assert len(real_inputs) == len(fixed.graph.input) == 1
    assert tuple(d.dim_value for d in real_inputs[0].type.tensor_type.shape.dim) == recipe.input.shape
    for out in fixed.graph.output:
        assert all(d.dim_value > 0 for d in out.type.tensor_type.shape.dim), out.name
    assert [o.name for o in fixed.graph.output] == [o.name for o in model.graph.output]
    assert fixed.opset_import == model.opset_import and fixed.ir_version == model.ir_version
    assert fixed.metadata_props == model.metadata_props
    result = check_parity(model, fixed, image_feeds(recipe, model), atol=1e-3, rtol=1e-3)
    assert result.passed, result.summary()
    assert result.max_abs <= 1e-3


def _tiny() -> onnx.ModelProto:
    x = gs.Variable("x", dtype=np.float32, shape=[2])
    y = gs.Variable("y", dtype=np.float32, shape=[2])
    return to_model(
        gs.Graph(
            nodes=[gs.Node("Relu", name="relu", inputs=[x], outputs=[y])], inputs=[x], outputs=[y], opset=13
        )
    )


class TestErrors:
    def test_unknown_fix(self) -> None:
        with pytest.raises(GraphError, match="unknown graph fix 'nope'") as info:
            apply_fixes(_tiny(), [("nope", {})], FixContext())
        assert "cleanup" in (info.value.hint or "")

    def test_bad_parameters_name_the_fix(self) -> None:
        with pytest.raises(GraphError, match="graph fix 'fold-constants': bad parameters"):
            apply_fixes(_tiny(), [("fold-constants", {"colour": "red"})], FixContext())

    def test_fix_error_names_fix_and_node(self) -> None:
        with pytest.raises(GraphError, match="graph fix 'efficient-nms': efficient-nms cannot decode"):
            apply_fixes(_tiny(), [("efficient-nms", {})], FixContext(postprocess={"decoder": "yunet"}))

    def test_unexpected_exception_is_wrapped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def boom(graph: gs.Graph, ctx: FixContext) -> gs.Graph:
            err = ValueError("bad weights")
            err.node = graph.nodes[0].name  # type: ignore[attr-defined]
            raise err

        monkeypatch.setitem(registry._FIXES, "boom", boom)
        with pytest.raises(
            GraphError, match="graph fix 'boom' failed on node 'relu': ValueError: bad weights"
        ):
            apply_fixes(_tiny(), [("cleanup", {}), ("boom", {})], FixContext())
