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


def test_spinning_is_off_by_default_and_the_backend_says_it_runs_on_the_cpu(yunet: Path) -> None:
    from edgeagent.backends.ort import _session_options

    assert _session_options(None).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError):  # not set: onnxruntime's own default (spinning) applies
        _session_options(2, spin=True).get_session_config_entry("session.intra_op.allow_spinning")
    x = np.random.default_rng(2).uniform(0, 255, (1, 3, 320, 320)).astype(np.float32)
    with OrtBackend(str(yunet)) as calm, OrtBackend(str(yunet), spin=True) as spinning:
        assert calm.runs_on_cpu and spinning.runs_on_cpu
        a, b = calm.infer({"input": x}), spinning.infer({"input": x})
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])  # a scheduling setting, never a numeric one
