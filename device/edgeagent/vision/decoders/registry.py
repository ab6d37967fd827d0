"""The decoder registry: model family name -> decode function.

A decoder turns ONE image's raw model outputs into candidate detections (before NMS):

    decode_fn(outputs, input_hw, params) -> Detections

- ``outputs``: ``Mapping[str, np.ndarray]`` in the model's output order, batch axis removed;
- ``input_hw``: the network input (H, W) in pixels;
- ``params``: the recipe's resolved ``postprocess`` mapping (every key filled in by the schema);
- result: candidates scoring >= ``params["conf_threshold"]``, boxes xyxy float32 in INPUT
  pixels, scores float32, class_ids int64, landmarks (N, 5, 2) float32 for face models.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Tuple

import numpy as np

from ..errors import ParamsError
from ..types import Detections

DecodeFn = Callable[[Mapping[str, np.ndarray], Tuple[int, int], Mapping[str, Any]], Detections]

#: Registered decoders by name (filled by :func:`register_decoder`).
DECODERS: Dict[str, DecodeFn] = {}


def register_decoder(name: str) -> Callable[[DecodeFn], DecodeFn]:
    """Decorator registering a decode function under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def add(fn: DecodeFn) -> DecodeFn:
        if name in DECODERS:
            raise ValueError(f"decoder {name!r} is already registered (by {DECODERS[name].__module__})")
        DECODERS[name] = fn
        return fn

    return add


def get_decoder(name: str) -> DecodeFn:
    """The decode function registered as ``name``.

    Raises:
        ParamsError: (a ValueError) unknown name; the message lists the known names.
    """
    try:
        return DECODERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(DECODERS))
        raise ParamsError(f"unknown decoder {name!r}; known decoders: {known}") from None


def decode(
    outputs: Mapping[str, np.ndarray], input_hw: Tuple[int, int], params: Mapping[str, Any]
) -> Detections:
    """Decode ONE image's outputs with the decoder named by ``params["decoder"]``.

    Args:
        outputs: output name -> array (batch axis removed), in the model's output order.
        input_hw: network input (H, W) in pixels.
        params: the recipe's resolved ``postprocess`` mapping.

    Returns:
        Candidates scoring >= ``conf_threshold``, boxes xyxy in input pixels, before NMS.

    Raises:
        ParamsError: missing ``decoder`` key, unknown decoder, or a missing/bad family key.
        OutputsError: outputs that do not fit the decoder's layout.
    """
    if "decoder" not in params:
        raise ParamsError(
            "postprocess params: missing key 'decoder'; pass the recipe's resolved 'postprocess'"
        )
    return get_decoder(params["decoder"])(outputs, input_hw, params)
