"""Class-name lists for the decoders' ``class_ids``."""

from __future__ import annotations

from typing import List, Sequence, Union

from .errors import ParamsError

#: The 80 COCO detection classes in the contiguous order (ids 0..79) used by YOLO exports
#: and by ``coco128/data.yaml``.
COCO80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

#: The single class of the face detectors.
FACE = ("face",)

_BUILTIN = {"coco80": COCO80, "face": FACE}


def class_names(spec: Union[str, Sequence[str]]) -> List[str]:
    """Resolve the recipe's ``postprocess.classes`` to a list of names indexed by class id.

    Args:
        spec: ``"coco80"``, ``"face"``, or an explicit sequence of names.

    Returns:
        The names; ``class_names(spec)[class_id]`` names a detection.

    Raises:
        ParamsError: an unknown built-in name, or an empty/non-string list.
    """
    if isinstance(spec, str):
        if spec not in _BUILTIN:
            known = ", ".join(sorted(_BUILTIN))
            raise ParamsError(f"unknown class list {spec!r}; use one of {known} or an explicit list of names")
        return list(_BUILTIN[spec])
    names = list(spec)
    if not names or not all(isinstance(n, str) for n in names):
        raise ParamsError("postprocess.classes must be a non-empty list of strings (or 'coco80' / 'face')")
    return names
