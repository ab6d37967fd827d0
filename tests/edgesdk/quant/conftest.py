"""Fixtures for the int8 accuracy steps: a tiny real model with real images and statistics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.export import ExportResult
from edgesdk.graph.io import to_model
from edgesdk.quant.calibrate import Prepared
from edgesdk.quant.select import Selection
from edgesdk.quant.stats import ImageBatches, collect_stats
from edgesdk.recipe import parse_recipe


@pytest.fixture
def tiny_prepared(tmp_path: Path) -> Callable[..., Prepared]:
    """``tiny_prepared(quantize=None)``: conv1 makes channel 0 = 100 x blue (large) and
    channel 1 = 0.5 x green (small); conv2 (3x3, bias) reads only channel 1. Four random PNGs,
    statistics gathered with onnxruntime."""

    def make(quantize: dict | None = None) -> Prepared:
        rng = np.random.default_rng(0)
        x = gs.Variable("x", np.float32, [1, 3, 8, 8])
        c1, y = gs.Variable("c1", np.float32, [1, 2, 8, 8]), gs.Variable("y", np.float32, [1, 2, 8, 8])
        w1 = np.zeros((2, 3, 1, 1), np.float32)
        w1[0, 0], w1[1, 1] = 100.0, 0.5
        w2 = np.zeros((2, 2, 3, 3), np.float32)
        w2[:, 1] = rng.standard_normal((2, 3, 3)).astype(np.float32)
        nodes = [
            gs.Node("Conv", "conv1", {}, [x, gs.Constant("w1", w1)], [c1]),
            gs.Node(
                "Conv",
                "conv2",
                {"pads": [1, 1, 1, 1]},
                [c1, gs.Constant("w2", w2), gs.Constant("b2", np.array([0.1, -0.2], np.float32))],
                [y],
            ),
        ]
        model = to_model(gs.Graph(nodes, [x], [y], opset=13))
        spec = {
            "name": "tiny",
            "model": {"format": "onnx", "path": "tiny.onnx"},
            "input": {"name": "x", "shape": [1, 3, 8, 8]},
            "preprocess": {"resize": "stretch", "scale": 1.0 / 255},
            "postprocess": {"decoder": "yolov5"},
        }
        if quantize:
            spec["quantize"] = quantize
        recipe = parse_recipe(spec)
        paths = []
        for i in range(4):
            paths.append(tmp_path / f"{i}.png")
            cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        stats = collect_stats(model, ImageBatches(paths, recipe), input_name="x")
        exported = ExportResult(model, tmp_path / "tiny.onnx", [], None, "skipped", 0.0)
        return Prepared(recipe, exported, Selection(tmp_path, paths), stats)

    return make
