"""Parity numbers, verdicts and output matching; check_parity on onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import GraphError, ParityError
from edgesdk.graph.io import to_model
from edgesdk.graph.parity import check_parity, compare_outputs, match_outputs

F32 = np.float32


class TestCompareOutputs:
    def test_identical(self) -> None:
        a = np.linspace(-1, 1, 100, dtype=F32)
        result = compare_outputs({"y": a}, {"y": a.copy()}, atol=0, rtol=0)
        assert result.passed and result.max_abs == 0.0
        assert result.summary().startswith("PASS")

    def test_numbers(self) -> None:
        ref = np.array([1.0, 2.0, 4.0, 100.0], F32)
        test = ref + np.array([0.0, 0.001, -0.002, 0.05], F32)
        out = compare_outputs({"y": ref}, {"y": test}, atol=1e-3, rtol=1e-3).outputs[0]
        assert out.max_abs == pytest.approx(0.05, rel=1e-4)
        assert out.mean_abs == pytest.approx((0.001 + 0.002 + 0.05) / 4, rel=1e-3)
        assert out.max_rel == pytest.approx(0.0005, rel=1e-2)  # 0.001/2, 0.002/4 and 0.05/100
        assert out.mismatched == 0 and out.passed  # every diff <= 1e-3 + 1e-3 * |ref|
        assert out.elements == 4

    def test_tolerance_edges(self) -> None:
        ref = np.array([0.0, 10.0], F32)
        ok = compare_outputs({"y": ref}, {"y": ref + np.array([5e-4, 0.0105], F32)}, atol=1e-3, rtol=1e-3)
        bad = compare_outputs({"y": ref}, {"y": ref + np.array([2e-3, 0.0], F32)}, atol=1e-3, rtol=1e-3)
        assert ok.passed and not bad.passed
        assert bad.outputs[0].mismatched == 1 and bad.summary().startswith("FAIL")
        with pytest.raises(ParityError, match="differs from the original"):
            bad.raise_if_failed()

    def test_shape_mismatch_fails(self) -> None:
        result = compare_outputs({"y": np.zeros((1, 4), F32)}, {"y": np.zeros((1, 5), F32)})
        assert not result.passed and not result.outputs[0].shape_match
        assert "shape (1, 5) != (1, 4)" in result.summary()

    def test_nan(self) -> None:
        ref = np.array([np.nan, 1.0], F32)
        assert compare_outputs({"y": ref}, {"y": ref.copy()}).passed
        assert not compare_outputs({"y": ref}, {"y": np.array([0.0, 1.0], F32)}).passed

    def test_integer_outputs(self) -> None:
        ref = np.array([1, 2, 3], np.int32)
        assert compare_outputs({"n": ref}, {"n": ref}, atol=0, rtol=0).passed
        assert not compare_outputs({"n": ref}, {"n": ref + 1}, atol=0, rtol=0).passed

    def test_renamed_outputs_match_by_position(self) -> None:
        result = compare_outputs({"a": np.ones(2), "b": np.zeros(2)}, {"x": np.ones(2), "y": np.zeros(2)})
        assert [(o.name, o.test_name) for o in result.outputs] == [("a", "x"), ("b", "y")]
        assert result.passed

    def test_same_names_match_by_name(self) -> None:
        assert match_outputs(["a", "b"], ["b", "a"]) == [("a", "a"), ("b", "b")]

    def test_unmatchable(self) -> None:
        with pytest.raises(GraphError, match="cannot compare outputs"):
            compare_outputs({"a": np.ones(1)}, {"x": np.ones(1), "y": np.ones(1)})

    def test_json(self) -> None:
        data = compare_outputs({"y": np.ones((2, 2), F32)}, {"y": np.ones((2, 2), F32)}).to_json()
        text = json.dumps(data)
        assert json.loads(text)["outputs"][0]["ref_shape"] == [2, 2] and data["passed"] is True


def _scale_model(factor: float):
    x = gs.Variable("x", dtype=F32, shape=[1, 8])
    y = gs.Variable("y", dtype=F32, shape=[1, 8])
    node = gs.Node("Mul", inputs=[x, gs.Constant("k", np.array(factor, F32))], outputs=[y])
    return to_model(gs.Graph(nodes=[node], inputs=[x], outputs=[y], opset=13))


class TestCheckParity:
    def test_on_onnxruntime(self) -> None:
        feeds = [{"x": np.full((1, 8), v, F32)} for v in (1.0, 100.0)]
        same = check_parity(_scale_model(2.0), _scale_model(2.0), feeds, atol=0, rtol=0)
        assert same.passed and same.feeds == 2 and same.outputs[0].elements == 16
        off = check_parity(_scale_model(2.0), _scale_model(2.0001), feeds, atol=1e-3, rtol=0)
        assert not off.passed
        assert off.max_abs == pytest.approx(0.01, rel=1e-2)  # 100 * 1e-4 on the second feed
        assert off.outputs[0].mismatched == 8

    def test_needs_feeds(self) -> None:
        with pytest.raises(GraphError, match="at least one"):
            check_parity(_scale_model(1.0), _scale_model(1.0), [])
