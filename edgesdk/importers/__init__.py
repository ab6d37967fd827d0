"""Model importers: each turns one kind of source into an ``onnx.ModelProto``."""

from edgesdk.importers.darknet import darknet_to_onnx
from edgesdk.importers.dispatch import formats, import_model, resolve_model_path, resolve_weights_path
from edgesdk.importers.onnx_file import load_onnx
from edgesdk.importers.torch_module import torch_to_onnx

__all__ = [
    "darknet_to_onnx",
    "formats",
    "import_model",
    "load_onnx",
    "resolve_model_path",
    "resolve_weights_path",
    "torch_to_onnx",
]
