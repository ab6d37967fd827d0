"""Decoders per model family, looked up by name in :data:`DECODERS` (see :mod:`.registry`).

Importing this package registers the built-in families: yolov3, yolov5, yolov8, yolox,
retinaface, centerface, yunet, ultraface.
"""

from . import centerface, retinaface, ultraface, yolov3, yolov5, yolov8, yolox, yunet  # noqa: F401  (register)
from .registry import DECODERS, DecodeFn, decode, get_decoder, register_decoder

__all__ = ["DECODERS", "DecodeFn", "decode", "get_decoder", "register_decoder"]
