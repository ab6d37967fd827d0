"""Device runtimes behind one protocol: ``trt`` (TensorRT + pycuda) and ``ort`` (onnxruntime)."""

from edgeagent.backends.base import Backend, BackendError, TensorSpec

__all__ = ["Backend", "BackendError", "TensorSpec"]
