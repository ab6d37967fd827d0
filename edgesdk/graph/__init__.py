"""ONNX graph I/O, named fixes for TensorRT, lint and inspection."""

__all__: list[str] = []
