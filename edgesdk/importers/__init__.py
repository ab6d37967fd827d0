"""Model importers: each turns one kind of source into an ``onnx.ModelProto``."""

__all__: list[str] = []
