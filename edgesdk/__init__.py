"""edgesdk: take YOLO and face detectors from a recipe to an int8 TensorRT engine on a Jetson."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
