"""Fixtures for the graph tests: run a GS graph on onnxruntime, real-model feeds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from edgesdk.graph.io import load_model, run_onnxruntime, to_model
from edgesdk.recipe import Recipe

RunFn = Callable[..., dict[str, np.ndarray]]


@pytest.fixture()
def run() -> RunFn:
    """``run(graph_or_model, **inputs)`` -> outputs by name (onnxruntime CPU)."""

    def _run(graph: gs.Graph | onnx.ModelProto, **feed: np.ndarray) -> dict[str, np.ndarray]:
        model = graph if isinstance(graph, onnx.ModelProto) else to_model(graph)
        onnx.checker.check_model(model)
        return run_onnxruntime(model, feed)

    return _run


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def image_feeds(
    sample_images: dict[str, Path],
) -> Callable[[Recipe, onnx.ModelProto], list[dict[str, np.ndarray]]]:
    """``feeds(recipe, model)``: bus.jpg and zidane.jpg resized to the recipe's input, /255, NCHW."""
    import cv2

    def _feeds(recipe: Recipe, model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
        _, _, h, w = recipe.input.shape
        inits = {i.name for i in model.graph.initializer}
        name = recipe.input.name or next(i.name for i in model.graph.input if i.name not in inits)
        feeds = []
        for stem in ("bus", "zidane"):
            image = cv2.imread(str(sample_images[stem]), cv2.IMREAD_COLOR)
            assert image is not None, sample_images[stem]
            x = cv2.resize(image, (w, h)).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            feeds.append({name: np.ascontiguousarray(x)})
        return feeds

    return _feeds


@pytest.fixture(scope="session")
def recipe_model(models_dir: Path) -> Callable[[Recipe], onnx.ModelProto]:
    """``model(recipe)``: the recipe's source ONNX from the shared models."""

    def _load(recipe: Recipe) -> onnx.ModelProto:
        return load_model(models_dir / recipe.model.path)  # type: ignore[union-attr]

    return _load
