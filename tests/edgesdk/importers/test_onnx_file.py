"""Loading ONNX files: valid, external data, and every way a file can be broken."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesdk.errors import ArtifactNotFound, ModelFormatError
from edgesdk.importers.onnx_file import load_onnx


def tiny_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["images", "w"], ["out"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


def run(model: onnx.ModelProto) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": np.ones((1, 3, 8, 8), np.float32)})[0]


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


@pytest.fixture()
def external(tmp_path: Path) -> Path:
    folder = tmp_path / "ext"
    folder.mkdir()
    path = folder / "tiny.onnx"
    onnx.save(tiny_model(), str(path), save_as_external_data=True, location="tiny.data", size_threshold=0)
    return path


def test_loads_and_runs(saved: Path) -> None:
    model = load_onnx(saved)
    assert model.graph.node[0].name == "conv"
    np.testing.assert_allclose(run(model), run(tiny_model()))


def test_external_data_is_loaded_from_beside_the_file(external: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the model's folder: the data must be found relative to the file
    model = load_onnx(Path("ext") / "tiny.onnx")
    assert model.graph.initializer[0].data_location == TensorProto.DEFAULT
    np.testing.assert_allclose(run(model), run(tiny_model()))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="nothing.onnx"):
        load_onnx(tmp_path / "nothing.onnx")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFormatError, match="truncated") as err:
        load_onnx(saved)
    assert str(saved) in str(err.value)


def test_other_format(tmp_path: Path) -> None:
    path = tmp_path / "picture.onnx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ModelFormatError, match="picture.onnx"):
        load_onnx(path)


def test_empty_file_has_no_graph(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="no graph"):
        load_onnx(path)


def test_missing_external_data(external: Path) -> None:
    (external.parent / "tiny.data").unlink()
    with pytest.raises(ModelFormatError, match="external data") as err:
        load_onnx(external)
    assert str(external) in str(err.value)


def test_truncated_external_data(external: Path) -> None:
    data_file = external.parent / "tiny.data"
    data_file.write_bytes(data_file.read_bytes()[:20])
    with pytest.raises(ModelFormatError, match="external data"):
        load_onnx(external)


def test_checker_failure(tmp_path: Path) -> None:
    model = tiny_model()
    model.graph.node[0].input[1] = "undefined_weight"
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelFormatError, match="fails the ONNX checker") as err:
        load_onnx(path)
    assert str(path) in str(err.value)


def test_real_model(models_dir: Path) -> None:
    model = load_onnx(models_dir / "yolov5n_coco" / "yolov5n.onnx")
    assert model.graph.input[0].name == "images" and len(model.graph.node) > 100
