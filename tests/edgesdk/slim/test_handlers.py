"""Slicing handlers: registry rules and constants shared between nodes."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import EdgeSdkInternalError, PruneError
from edgesdk.slim.coupling import known_ops
from edgesdk.slim.handlers import handled_ops, handler, handler_for

F32 = np.float32


def test_unknown_op_is_a_typed_error_naming_node() -> None:
    node = gs.Node("MyPlugin", "plugin_7", inputs=[], outputs=[gs.Variable("y")])
    with pytest.raises(PruneError, match=r"'plugin_7' \(MyPlugin\): no slicing handler for MyPlugin"):
        handler_for(node)


def test_duplicate_registration_raises() -> None:
    with pytest.raises(EdgeSdkInternalError, match="registered twice"):
        handler("Conv")(lambda node, masks: None)


def test_every_op_that_passes_channels_has_a_handler() -> None:
    """An op with a coupling rule lets channels through, so it needs a handler (Shape/Constant pin)."""
    assert set(known_ops()) - set(handled_ops()) == {"Shape", "Size", "Constant"}


def test_shared_weight_is_copied_not_mutated(kit) -> None:
    b = kit.Builder()
    shared = b.const(b.rng.standard_normal((6, 4, 3, 3)).astype(F32), "shared")
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    left = b.op("Conv", [b.x, shared], attrs, name="left")
    right = b.op("Conv", [b.x, shared], attrs, name="right")
    model = b.model(b.conv(left, 6, 2, name="l_out"), b.conv(right, 6, 2, name="r_out"))
    _, analysis = kit.analysis_of(model)
    gl = next(g for g in analysis.groups if g.sources == ["left"])
    gr = next(g for g in analysis.groups if g.sources == ["right"])
    pruned = kit.assert_equivalent(model, {gl.id: [0, 1], gr.id: [2, 3, 4]})
    dims = {i.name: list(i.dims) for i in pruned.graph.initializer}
    assert sorted(d[0] for n, d in dims.items() if n.startswith("shared")) == [2, 3]
