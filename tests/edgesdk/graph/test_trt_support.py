"""The TensorRT ONNX-parser support tables."""

from __future__ import annotations

import pytest

from edgesdk.errors import GraphError
from edgesdk.graph.trt_support import PLUGINS, TRT_VERSIONS, support


def test_versions() -> None:
    assert TRT_VERSIONS == ("8.5", "8.6", "10.3")
    with pytest.raises(GraphError, match="no TensorRT support table for version '9.0'") as info:
        support("9.0")
    assert "8.5, 8.6, 10.3" in (info.value.hint or "")


@pytest.mark.parametrize("trt", TRT_VERSIONS)
def test_tables_are_consistent(trt: str) -> None:
    table = support(trt)
    assert not table.supported & table.unsupported
    for op in (
        "Conv",
        "Resize",
        "Upsample",
        "Concat",
        "Sigmoid",
        "MaxPool",
        "Reshape",
        "Slice",
        "NonMaxSuppression",
    ):
        assert table.status(op) == "supported", op
    for op in ("Unique", "ConvInteger", "QLinearConv", "SequenceAt"):
        assert table.status(op) == "unsupported", op
    assert table.status("MadeUpOp") == "unknown"
    assert set(table.const_inputs) <= table.supported


def test_version_differences() -> None:
    v85, v86, v103 = (support(v) for v in TRT_VERSIONS)
    assert (
        v85.status("LayerNormalization") == "unsupported" and v86.status("LayerNormalization") == "supported"
    )
    assert v85.status("IsInf") == "unsupported" and v86.status("IsInf") == "supported"
    assert v85.status("DeformConv") == "unknown" and v103.status("DeformConv") == "supported"
    # added after 10.3: STFT in 10.5, Attention in 10.14
    assert v103.status("STFT") == "unsupported" and v103.status("Attention") == "unsupported"
    assert (v85.int64_native, v86.int64_native, v103.int64_native) == (False, False, True)
    assert "TopK" in v85.const_inputs and "TopK" not in v86.const_inputs  # dynamic K since 8.6
    assert "Slice" in v86.const_inputs and "Slice" not in v103.const_inputs  # tensor axes since 10.3
    assert (v85.opset_max, v103.opset_max) == (17, 20)


def test_plugins() -> None:
    assert {"EfficientNMS_TRT", "BatchedNMS_TRT", "ROIAlign_TRT"} <= PLUGINS
