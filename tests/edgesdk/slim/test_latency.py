"""Latency cost model: padded channel blocks, the per-node fit, latency-targeted plans."""

from __future__ import annotations

import numpy as np
import pytest

from edgesdk.slim.latency import _fit_convs, host_block, latency_model, profile_nodes
from edgesdk.slim.plan import make_plan


def _chain(kit, relu: bool):
    """x [1,3,32,32] -> conv a (3->32) [-> Relu] -> conv b (32->16) -> output."""
    b = kit.Builder(shape=(1, 3, 32, 32), seed=2)
    a = b.conv(b.x, 3, 32, name="a")
    if relu:
        a = b.op("Relu", [a])
    return b.model(b.conv(a, 32, 16, name="b"))


def _group_a(analysis):
    return next(g for g in analysis.groups if g.sources == ["a"])


def test_host_block_is_an_nchwc_block() -> None:
    assert host_block() in (8, 16)


def test_profile_reports_every_conv(kit) -> None:
    events = profile_nodes(_chain(kit, relu=False), runs=2)
    convs = [args for op, ms, args in events if "Conv" in op]
    assert len(convs) == 2 and all(ms >= 0 for _, ms, _ in events)


def test_counts_are_padded_to_the_block(kit) -> None:
    model = _chain(kit, relu=False)
    graph, analysis = kit.analysis_of(model)
    fitted = latency_model(model, graph, analysis, block=16)
    group = _group_a(analysis)
    full = fitted.ms()
    assert full > 0
    assert fitted.ms(analysis.keep_vector({group.id: np.arange(32)})) == pytest.approx(full)
    # 24 channels run as 32 in 16-channel blocks: nothing saved; 16 channels: less
    assert fitted.ms(analysis.keep_vector({group.id: np.arange(24)})) == pytest.approx(full)
    assert fitted.ms(analysis.keep_vector({group.id: np.arange(16)})) < full
    fine = latency_model(model, graph, analysis, block=8)
    assert fine.ms(analysis.keep_vector({group.id: np.arange(24)})) < fine.ms()


def test_elementwise_time_follows_the_channels(kit) -> None:
    model = _chain(kit, relu=True)
    graph, analysis = kit.analysis_of(model)
    fitted = latency_model(model, graph, analysis, block=16)
    group = _group_a(analysis)
    if fitted.per_element > 0:  # the Relu may be fused into the conv by onnxruntime
        assert fitted.ms(analysis.keep_vector({group.id: np.arange(24)})) < fitted.ms()


def test_fit_recovers_coefficients_and_drops_negative_ones() -> None:
    macs = np.array([1e6, 4e6, 2e6, 8e6, 3e6])
    outs = np.array([1e3, 1e3, 4e3, 2e3, 8e3])
    ms = 2e-6 * macs + 1e-4 * outs + 0.05
    a, m, c = _fit_convs(list(zip(macs, outs, ms)))
    assert (a, m, c) == pytest.approx((2e-6, 1e-4, 0.05), rel=1e-6)
    a, m, c = _fit_convs(list(zip(macs, outs, 2e-6 * macs - 1e-5 * outs + 1.0)))
    assert min(a, m, c) >= 0.0 and m == 0.0


def test_latency_target_plan_removes_the_predicted_share(kit) -> None:
    model = _chain(kit, relu=True)
    extras = {"block": 8}
    plan = make_plan(model, method="l1", ratio=0.3, round_to=8, target="latency", extras=extras)
    before, after = plan.predicted_ms
    assert plan.target == "latency" and after <= 0.7 * before + 1e-9
    assert plan.flops_after < plan.flops_before
    flops = make_plan(model, method="l1", ratio=0.3, round_to=8)
    assert flops.target == "flops" and flops.predicted_ms == []
    again = make_plan(model, method="l1", ratio=0.3, round_to=8, target="latency", extras=extras)
    assert again.predicted_ms == plan.predicted_ms  # calibrated once, kept in extras
