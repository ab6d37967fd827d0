"""onnxruntime backend: the `local` device, CI, and any machine without TensorRT.

"Building" an engine means letting onnxruntime optimise the graph once and saving the
optimised model, so later loads skip that work.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edgeagent.backends.base import Backend, BackendError, TensorSpec

_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendError(
            "the ort backend needs onnxruntime: pip install onnxruntime (or onnxruntime-gpu)"
        ) from err
    return onnxruntime


def ort_version() -> Optional[str]:
    """onnxruntime's version, or None when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


def default_providers() -> List[str]:
    """Execution providers in preference order: TensorRT, CUDA, then CPU (what is installed)."""
    available = set(_ort().get_available_providers())
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def _session_options(threads: Optional[int], spin: bool = False) -> Any:
    """Session options: full graph optimisation; ``threads`` intra-op threads (None: one per core).

    ``spin=False`` sets ``session.intra_op.allow_spinning=0``: idle intra-op threads sleep instead
    of busy-waiting for the next parallel section. In the camera pipeline inference shares the
    cores with capture, pre- and post-processing, and a spinning thread takes a core from them;
    measured on 2 cores (docs/benchmarks.md) it raises end-to-end FPS while the engine alone
    loses a few percent at most.
    """
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def build_ort(onnx_path: str, options: Dict[str, Any]) -> bytes:
    """Optimise ``onnx_path`` with onnxruntime (CPU) and return the optimised model bytes.

    Args:
        onnx_path: the exported ONNX model.
        options: the manifest's ``build`` section (``precision`` is recorded; the CPU provider
            runs the graph's own precision: fp32, or int8 for a Q/DQ model).
    """
    ort = _ort()
    opts = _session_options(None)
    # Extended (not ALL): layout-specific NCHWc rewrites are tied to this CPU's ISA.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    fd, out_path = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        opts.optimized_model_filepath = out_path
        try:
            ort.InferenceSession(onnx_path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {onnx_path}: {err}") from err
        with open(out_path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(out_path)


class OrtBackend(Backend):
    """Runs an ONNX model (or onnxruntime-optimised model) with onnxruntime.

    Args:
        model: a path to the model, or its bytes.
        providers: execution providers in preference order (default: :func:`default_providers`).
        threads: intra-op threads (default: onnxruntime's, one per physical core).
        spin: let idle intra-op threads busy-wait (onnxruntime's own default). Off here: see
            :func:`_session_options`.
    """

    name = "ort"

    def __init__(
        self,
        model: str | bytes,
        providers: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
        spin: bool = False,
    ) -> None:
        super().__init__()
        self._model = model
        self._providers = list(providers) if providers else None
        self._threads = threads
        self._spin = spin
        self._session: Any = None

    def _activate_impl(self) -> None:
        ort = _ort()
        try:
            self._session = ort.InferenceSession(
                self._model,
                sess_options=_session_options(self._threads, self._spin),
                providers=self._providers or default_providers(),
            )
        except Exception as err:
            raise BackendError(f"onnxruntime cannot load the model: {err}") from err
        self.inputs = [_spec(arg) for arg in self._session.get_inputs()]
        self.outputs = [_spec(arg) for arg in self._session.get_outputs()]

    def _infer_impl(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        names = [spec.name for spec in self.outputs]
        values = self._session.run(names, feed)
        return dict(zip(names, values))

    def _deactivate_impl(self) -> None:
        self._session = None

    @property
    def providers(self) -> List[str]:
        return list(self._session.get_providers()) if self._session is not None else []

    @property
    def runs_on_cpu(self) -> bool:
        return self.providers[:1] == ["CPUExecutionProvider"]


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(int(d) if isinstance(d, int) else -1 for d in arg.shape)
    return TensorSpec(arg.name, shape, _DTYPES.get(arg.type, arg.type))
