"""Errors raised by the vision ops for bad parameters or mismatched model outputs.

Both subclass :class:`ValueError`, so callers that only know the builtin still catch them.
Messages say what is wrong, on which key or output, and what to do next.
"""


class VisionError(ValueError):
    """Root of the errors raised by :mod:`edgeagent.vision`."""


class ParamsError(VisionError):
    """A pre/post-processing parameter is missing or has an unusable value.

    The device never invents defaults: every key comes from the recipe schema through the
    resolved recipe (``Recipe.resolved()`` on the host, ``manifest.json`` on the device).
    """


class OutputsError(VisionError):
    """Model outputs do not have the layout the decoder expects (count, shape, anchors)."""
