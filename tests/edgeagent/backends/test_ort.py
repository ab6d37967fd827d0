"""The onnxruntime backend on real models: protocol checks, optimised build, same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeagent.backends.base import BackendError
from edgeagent.backends.ort import OrtBackend, build_ort


@pytest.fixture(scope="module")
def yunet(models_dir: Path) -> Path:
    return models_dir / "yunet_n" / "yunet_n_320_320.onnx"


def test_protocol_and_checks(yunet: Path) -> None:
    backend = OrtBackend(str(yunet))
    with pytest.raises(BackendError, match="not active"):
        backend.infer({})
    with backend:
        assert [s.name for s in backend.inputs] == ["input"]
        assert backend.inputs[0].shape == (1, 3, 320, 320)
        assert len(backend.outputs) == 12
        x = np.random.default_rng(0).uniform(0, 255, (1, 3, 320, 320)).astype(np.float32)
        out = backend.infer({"input": x})
        assert list(out) == [s.name for s in backend.outputs]
        assert out["cls_8"].shape == (1, 1600, 1)
        with pytest.raises(BackendError, match="shape"):
            backend.infer({"input": x[:, :, :160]})
        with pytest.raises(BackendError, match="dtype"):
            backend.infer({"input": x.astype(np.float64)})
        with pytest.raises(BackendError, match="missing"):
            backend.infer({"images": x})
    assert not backend.active


def test_optimised_build_gives_same_outputs(yunet: Path) -> None:
    engine = build_ort(str(yunet), {"precision": "fp32"})
    assert engine[:2] != b"" and len(engine) > 10_000
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 320, 320)).astype(np.float32)
    with OrtBackend(str(yunet)) as ref, OrtBackend(engine) as opt:
        a, b = ref.infer({"input": x}), opt.infer({"input": x})
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-4)


def test_corrupt_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(BackendError, match="cannot load"):
        build_ort(str(bad), {})
    with pytest.raises(BackendError, match="cannot load"):
        OrtBackend(str(bad)).activate()
