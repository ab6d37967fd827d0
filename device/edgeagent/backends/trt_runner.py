"""Run a serialised TensorRT engine: named I/O tensors, pinned host buffers, one CUDA stream.

Uses the TensorRT >= 8.5 tensor API (``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``,
``set_tensor_address``, ``execute_async_v3``), identical in 8.5, 8.6 and 10.x. CUDA work
goes through pycuda on the device's *primary* context, the one TensorRT's runtime API uses,
pushed around every call so any thread may call :meth:`TrtBackend.infer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

import numpy as np

from edgeagent.backends.base import Backend, BackendError, TensorSpec
from edgeagent.backends.trt_compat import api_for, dims_to_tuple, numpy_dtype, pick_profile_shape
from edgeagent.backends.trt_log import NO_TENSORRT, LogArg, as_log_tail, make_trt_logger

if TYPE_CHECKING:  # the tensorrt-stubs package (tools/trt_stubs.sh); Any without it
    import tensorrt

__all__ = ["CudaContext", "TrtBackend"]

EngineSource = Union[bytes, bytearray, memoryview, str, Path]


def _pycuda() -> Any:
    try:
        import pycuda.driver as cuda
    except ImportError as err:
        raise BackendError(
            "the trt backend needs pycuda: pip3 install pycuda (on a Jetson, with CUDA's nvcc on PATH)"
        ) from err
    return cuda


class CudaContext:
    """The primary CUDA context of one GPU, usable as ``with ctx: …`` (push, then pop).

    Args:
        device: CUDA device ordinal (Jetsons have one GPU: 0).
    """

    def __init__(self, device: int = 0) -> None:
        self.device = device
        self._ctx: Any = None

    def __enter__(self) -> CudaContext:
        cuda = _pycuda()
        if self._ctx is None:
            cuda.init()
            self._ctx = cuda.Device(self.device).retain_primary_context()
        self._ctx.push()
        return self

    def __exit__(self, *exc: Any) -> None:
        _pycuda().Context.pop()

    @property
    def retained(self) -> bool:
        """Whether the primary context is currently retained by this object."""
        return self._ctx is not None

    def release(self) -> None:
        """Drop our reference to the primary context (after all CUDA objects are freed)."""
        if self._ctx is not None:
            self._ctx.detach()
            self._ctx = None


class _Session:
    """Everything alive while a :class:`TrtBackend` is active (freed in reverse order)."""

    def __init__(self) -> None:
        self.logger: Any = None
        self.runtime: Any = None
        self.engine: Any = None
        self.context: Any = None
        self.stream: Any = None
        self.host: Dict[str, np.ndarray] = {}
        self.device: Dict[str, Any] = {}


class TrtBackend(Backend):
    """A TensorRT engine behind the :class:`~edgeagent.backends.base.Backend` protocol.

    Args:
        engine: the serialised engine (bytes) or a path to it.
        device: CUDA device ordinal.
        log: where TensorRT's warnings/errors go: a :class:`LogTail` or a ``callback(line)``.

    Raises (on activate):
        BackendError: TensorRT/pycuda missing, an engine file that does not exist, an engine
            built by another TensorRT version or for another GPU (rebuild it).
    """

    name = "trt"

    def __init__(self, engine: EngineSource, *, device: int = 0, log: LogArg = None) -> None:
        super().__init__()
        self._source = engine
        self.log = as_log_tail(log)
        self._cuda = CudaContext(device)
        self._session: Optional[_Session] = None

    def _engine_bytes(self) -> bytes:
        if isinstance(self._source, (str, Path)):
            path = Path(self._source)
            if not path.is_file():
                raise BackendError(f"engine file {path} does not exist; build it first (edgeagent build)")
            return path.read_bytes()
        return bytes(self._source)

    # -- lifecycle
    def _activate_impl(self) -> None:
        try:
            import tensorrt as trt
        except ImportError as err:
            raise BackendError(NO_TENSORRT) from err
        api_for(trt.__version__)  # refuses TensorRT < 8.5 (no named-tensor API)
        data = self._engine_bytes()
        session = _Session()
        self._session = session
        try:
            with self._cuda:
                self._open(session, data)
        except BaseException:
            self._close()
            raise

    def _open(self, session: _Session, data: bytes) -> None:
        import tensorrt as trt

        session.logger = make_trt_logger(self.log)
        runtime = trt.Runtime(session.logger)
        session.runtime = runtime
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise self.log.error(
                f"TensorRT {trt.__version__} cannot load this engine: it was built by another TensorRT "
                "version or for another GPU; rebuild it on this device"
            )
        session.engine = engine
        context = engine.create_execution_context()
        if context is None:
            raise self.log.error("TensorRT could not create an execution context (out of GPU memory?)")
        session.context = context
        self.inputs, outputs = _bind_inputs(engine, context)
        self.outputs = [
            TensorSpec(name, dims_to_tuple(context.get_tensor_shape(name)), dtype) for name, dtype in outputs
        ]
        cuda = _pycuda()
        for spec in self.inputs + self.outputs:
            if any(d < 0 for d in spec.shape):
                raise BackendError(
                    f"tensor {spec.name!r} still has a dynamic shape {spec.shape} after binding inputs"
                )
            host = cuda.pagelocked_empty(spec.shape, np.dtype(spec.dtype))
            session.host[spec.name] = host
            session.device[spec.name] = cuda.mem_alloc(max(int(host.nbytes), 1))
            if not context.set_tensor_address(spec.name, int(session.device[spec.name])):
                raise self.log.error(f"TensorRT refused the device buffer for {spec.name!r}")
        session.stream = cuda.Stream()

    def _infer_impl(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        session = self._session
        if session is None:  # activate() sets it; Backend.infer checks activity first
            raise BackendError("trt backend has no session: call activate() first")
        cuda = _pycuda()
        with self._cuda:
            for spec in self.inputs:
                np.copyto(session.host[spec.name], feed[spec.name])
                cuda.memcpy_htod_async(session.device[spec.name], session.host[spec.name], session.stream)
            if not session.context.execute_async_v3(session.stream.handle):
                raise self.log.error("TensorRT execute_async_v3 failed")
            for spec in self.outputs:
                cuda.memcpy_dtoh_async(session.host[spec.name], session.device[spec.name], session.stream)
            session.stream.synchronize()
        return {spec.name: session.host[spec.name].copy() for spec in self.outputs}

    def _deactivate_impl(self) -> None:
        self._close()

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._cuda.retained:
            with self._cuda:
                for allocation in session.device.values():
                    allocation.free()
                session.device.clear()
                session.host.clear()
                # TensorRT objects die in reverse creation order: context, engine, runtime.
                session.context = session.engine = session.runtime = session.stream = None
        self._cuda.release()


def _bind_inputs(
    engine: tensorrt.ICudaEngine, context: tensorrt.IExecutionContext
) -> Tuple[List[TensorSpec], List[Tuple[str, str]]]:
    """Input specs (dynamic inputs pinned to their profile's opt shape) and outputs' (name, dtype)."""
    import tensorrt as trt

    inputs: List[TensorSpec] = []
    outputs: List[Tuple[str, str]] = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        dtype = numpy_dtype(engine.get_tensor_dtype(name).name)
        if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
            outputs.append((name, dtype))
            continue
        shape = dims_to_tuple(engine.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            shape = pick_profile_shape(name, shape, engine.get_tensor_profile_shape(name, 0))
            if not context.set_input_shape(name, shape):
                raise BackendError(f"TensorRT refused input shape {shape} for {name!r}")
        inputs.append(TensorSpec(name, shape, dtype))
    return inputs, outputs
