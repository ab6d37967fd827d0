"""Graph I/O: load/save, ModelProto <-> Graph round trip, metadata, onnxruntime runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from edgesdk.errors import ArtifactNotFound, GraphError, ModelFormatError
from edgesdk.graph import io
from edgesdk.graph.io import (
    get_metadata,
    load_model,
    model_bytes,
    model_from_bytes,
    output_shapes_by_running,
    run_onnxruntime,
    save_model,
    set_metadata,
    to_graph,
    to_model,
)

F32 = np.float32


def _graph(opset: int = 13) -> gs.Graph:
    x = gs.Variable("x", dtype=F32, shape=[1, 3])
    y = gs.Variable("y", dtype=F32, shape=[1, 3])
    return gs.Graph(nodes=[gs.Node("Relu", inputs=[x], outputs=[y])], inputs=[x], outputs=[y], opset=opset)


@pytest.fixture(scope="module")
def yolov5n(models_dir: Path) -> onnx.ModelProto:
    return load_model(models_dir / "yolov5n_coco" / "yolov5n.onnx")


class TestLoad:
    def test_missing(self, tmp_path: Path) -> None:
        with pytest.raises(ArtifactNotFound, match="does not exist"):
            load_model(tmp_path / "nope.onnx")

    @pytest.mark.parametrize("content", [b"not a model at all\n", b"", b"\x08\x07"])
    def test_garbage(self, tmp_path: Path, content: bytes) -> None:
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(content)
        with pytest.raises(ModelFormatError):
            load_model(bad)

    def test_truncated_real_model(self, tmp_path: Path, models_dir: Path) -> None:
        data = (models_dir / "yolox_nano_coco" / "yolox_nano_416x416.onnx").read_bytes()
        cut = tmp_path / "cut.onnx"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFormatError, match="cut.onnx"):
            load_model(cut)

    def test_from_bytes(self, yolov5n: onnx.ModelProto) -> None:
        assert model_from_bytes(model_bytes(yolov5n)) == yolov5n
        with pytest.raises(ModelFormatError):
            model_from_bytes(b"\xff\xff\xff")


class TestSave:
    def test_atomic_write_and_overwrite(self, tmp_path: Path) -> None:
        model = to_model(_graph())
        target = tmp_path / "sub" / "m.onnx"
        save_model(model, target)
        assert load_model(target) == model
        save_model(set_metadata(model, {"k": "v"}), target)
        assert get_metadata(load_model(target)) == {"k": "v"}
        assert sorted(p.name for p in target.parent.iterdir()) == ["m.onnx"]

    def test_failed_write_keeps_the_old_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        target = tmp_path / "m.onnx"
        save_model(to_model(_graph()), target)
        before = target.read_bytes()

        def fail(_model: onnx.ModelProto) -> bytes:
            raise OSError("disk full")

        monkeypatch.setattr(io, "model_bytes", fail)
        with pytest.raises(OSError, match="disk full"):
            save_model(to_model(_graph(14)), target)
        assert target.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


class TestMetadata:
    def test_merge_sorted_and_copy(self) -> None:
        model = set_metadata(to_model(_graph()), {"b": "1", "a": "2"})
        assert [(p.key, p.value) for p in model.metadata_props] == [("a", "2"), ("b", "1")]
        again = set_metadata(model, {"b": "3", "c": "4"})
        assert [(p.key, p.value) for p in again.metadata_props] == [("a", "2"), ("b", "3"), ("c", "4")]
        assert get_metadata(model) == {"a": "2", "b": "1"}  # the input is not modified


class TestRoundTrip:
    def test_to_graph_does_not_modify_the_model(self, yolov5n: onnx.ModelProto) -> None:
        before = model_bytes(yolov5n)
        to_graph(yolov5n)
        assert model_bytes(yolov5n) == before

    def test_like_keeps_header_and_metadata(self, yolov5n: onnx.ModelProto) -> None:
        again = to_model(to_graph(yolov5n), like=yolov5n)
        assert again.opset_import == yolov5n.opset_import
        assert again.ir_version == yolov5n.ir_version == 7
        assert again.producer_name == "pytorch" and get_metadata(again)["stride"] == "32"
        assert len(again.graph.node) == len(yolov5n.graph.node)
        onnx.checker.check_model(again)

    def test_ir_version_follows_opset_without_like(self) -> None:
        assert to_model(_graph(11)).ir_version >= 6
        onnx.checker.check_model(to_model(_graph(11)))


class TestRun:
    def test_runs_and_reports_missing_inputs(self) -> None:
        model = to_model(_graph())
        out = run_onnxruntime(model, {"x": np.array([[-1, 0, 2]], F32), "unused": np.zeros(1)})
        np.testing.assert_array_equal(out["y"], [[0, 0, 2]])
        with pytest.raises(GraphError, match="no input data"):
            run_onnxruntime(model, {})

    def test_output_shapes_by_running(self) -> None:
        assert output_shapes_by_running(_graph()) == {"y": [1, 3]}
        graph = _graph()
        graph.inputs[0].shape = ["N", 3]
        with pytest.raises(GraphError, match="no static shape"):
            output_shapes_by_running(graph)
