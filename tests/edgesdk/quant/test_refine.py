"""The recipe's accuracy keys through `finish`: calibrator mixed, keep_fp_auto, bias_correction."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from pydantic import ValidationError

from edgesdk.graph.io import to_graph
from edgesdk.quant.calibrate import Prepared, finish
from edgesdk.recipe import QuantizeSpec

Tiny = Callable[..., Prepared]


def _bias(result: object) -> np.ndarray:
    graph = to_graph(result.qdq)  # type: ignore[attr-defined]
    conv2 = next(n for n in graph.nodes if n.name == "conv2")
    return np.asarray(conv2.inputs[2].values)


def test_defaults_change_nothing(tiny_prepared: Tiny) -> None:
    result = finish(tiny_prepared(), "entropy-nozero")
    assert result.refined is not None and result.refined.auto_keep == [] and result.refined.mixed is None
    assert np.array_equal(_bias(result), np.array([0.1, -0.2], np.float32))
    assert result.summary_json()["refine"] == {"keep_fp_auto": [], "mixed": None, "bias_correction": None}


def test_mixed_thresholds_reach_cache_summary_and_qdq(tiny_prepared: Tiny) -> None:
    prepared = tiny_prepared()
    plain, mixed = finish(prepared, "entropy-nozero"), finish(prepared, "mixed")
    by_name = {t.name: t for t in mixed.tensors}
    before = next(t.threshold for t in plain.tensors if t.name == "c1")
    assert by_name["c1"].threshold is not None and before is not None
    assert by_name["c1"].threshold < 0.2 * before
    assert by_name["c1"].saturation > 0.1  # channel 0 saturates, as chosen
    assert mixed.plan.activations["c1"][0] == pytest.approx(by_name["c1"].threshold / 127)
    assert mixed.cache != plain.cache
    assert mixed.summary_json()["refine"]["mixed"]["tensors"]["c1"]["from"].startswith("amax/2^")


def test_keep_fp_auto_and_bias_correction(tiny_prepared: Tiny) -> None:
    prepared = tiny_prepared({"keep_fp_auto": 1, "bias_correction": True})
    result = finish(prepared, "entropy-nozero")
    assert result.refined is not None and len(result.refined.auto_keep) == 1
    assert result.refined.auto_keep == ["conv2"]  # c1 at entropy-nozero's threshold hurts most
    assert result.plan.kept_float["conv2"] == "quantize.keep_fp"
    assert set(result.seconds) >= {"sensitivity", "qdq"}
    graph = to_graph(result.qdq)
    conv1, conv2 = (next(n for n in graph.nodes if n.name == name) for name in ("conv1", "conv2"))
    assert conv2.inputs[1].name == "w2"  # float weights, no Q/DQ
    # conv1 had no bias: it gets one, -shift; its weights (100, 0.5, zeros) are exact in int8
    assert conv1.inputs[2].name.endswith("_corrected")
    assert result.summary_json()["refine"]["bias_correction"]["layers"] == 1
    assert np.array_equal(np.asarray(conv1.inputs[2].values), np.zeros(2, np.float32))


def test_recipe_keys() -> None:
    spec = QuantizeSpec(calibrator="mixed", keep_fp_auto=3, bias_correction=True)
    assert spec.keep_fp_auto == 3 and spec.bias_correction
    with pytest.raises(ValidationError):
        QuantizeSpec(keep_fp_auto=-1)
