"""Pre-processing, decoders, NMS and class names: pure numpy/OpenCV, shared by host and device.

One implementation of each decoder in the whole repo: the agent runs them on the device and
the host imports them for evaluation and int8 previews.
"""

from .classes import COCO80, FACE, class_names
from .decoders import DECODERS, decode, get_decoder, register_decoder
from .errors import OutputsError, ParamsError, VisionError
from .nms import batched_nms, nms
from .postprocess import postprocess, split_batch
from .preprocess import Transform, preprocess, preprocess_batch, resize_to_input
from .types import Detections

__all__ = [
    "COCO80",
    "DECODERS",
    "FACE",
    "Detections",
    "OutputsError",
    "ParamsError",
    "Transform",
    "VisionError",
    "batched_nms",
    "class_names",
    "decode",
    "get_decoder",
    "nms",
    "postprocess",
    "preprocess",
    "preprocess_batch",
    "register_decoder",
    "resize_to_input",
    "split_batch",
]
