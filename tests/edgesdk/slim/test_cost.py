"""The FLOPs model agrees with inspect's count, before and after pruning."""

from __future__ import annotations

from edgesdk.graph.inspect import inspect_model
from edgesdk.slim.cost import cost_model


def test_cost_model_matches_inspect_after_pruning(exported, kit) -> None:
    original = exported("yolo-fastest")
    graph, analysis = kit.analysis_of(original)
    costs = cost_model(graph, analysis)
    assert costs.flops() == inspect_model(original).flops
    kept = kit.half_kept(analysis, seed=2)
    predicted = costs.flops(analysis.keep_vector(kept))
    assert predicted == inspect_model(kit.prune(original, kept)).flops < costs.flops()


def test_gemm_and_depthwise_terms(kit) -> None:
    b = kit.Builder()
    import numpy as np

    dw = b.conv(b.conv(b.x, 4, 8, k=1, name="pw"), 8, 8, group=8, name="dw")
    flat = b.op("Flatten", [b.op("GlobalAveragePool", [dw])], {"axis": 1})
    model = b.model(b.op("Gemm", [flat, b.const(np.ones((8, 3), np.float32))], name="fc"))
    graph, analysis = kit.analysis_of(model)
    costs = cost_model(graph, analysis)
    group = next(g for g in analysis.groups if g.sources == ["pw"])
    kept = {group.id: [0, 1, 2]}
    assert costs.flops(analysis.keep_vector(kept)) == inspect_model(kit.prune(model, kept)).flops
