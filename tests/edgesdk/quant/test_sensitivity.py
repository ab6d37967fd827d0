"""Sensitivity ranking: the tensor whose quantisation hurts most comes first."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.export import ExportResult
from edgesdk.graph.io import to_model
from edgesdk.quant.calibrate import Prepared
from edgesdk.quant.select import Selection
from edgesdk.quant.sensitivity import keep_fp_for, rank_sensitivity
from edgesdk.quant.stats import ActivationStats
from edgesdk.recipe import parse_recipe


def _prepared(tmp_path: Path) -> Prepared:
    rng = np.random.default_rng(0)
    x = gs.Variable("x", np.float32, [1, 3, 8, 8])
    c1, r1, y = (gs.Variable(n, np.float32, [1, 4, 8, 8]) for n in ("c1", "r1", "y"))
    nodes = [
        gs.Node(
            "Conv",
            "conv1",
            {"pads": [1, 1, 1, 1]},
            [x, gs.Constant("w1", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))],
            [c1],
        ),
        gs.Node("Relu", "relu1", {}, [c1], [r1]),
        gs.Node(
            "Conv", "", {}, [r1, gs.Constant("w2", rng.standard_normal((4, 4, 1, 1)).astype(np.float32))], [y]
        ),
    ]
    model = to_model(gs.Graph(nodes, [x], [y], opset=13))
    recipe = parse_recipe(
        {
            "name": "tiny",
            "model": {"format": "onnx", "path": "tiny.onnx"},
            "input": {"name": "x", "shape": [1, 3, 8, 8]},
            "preprocess": {"resize": "stretch", "scale": 1.0 / 255},
            "postprocess": {"decoder": "yolov5"},
        }
    )
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    exported = ExportResult(model, tmp_path / "tiny.onnx", [], None, "skipped", 0.0)
    return Prepared(recipe, exported, Selection(tmp_path, paths), ActivationStats(tensors={}))


def test_most_damaging_tensor_first(tmp_path: Path) -> None:
    prepared = _prepared(tmp_path)
    # x keeps its whole range; r1 saturates at a tenth of it
    ranked = rank_sensitivity(prepared, {"x": 1.0, "r1": 0.05}, images=2)
    assert [s.tensor for s in ranked] == ["r1", "x"]
    assert ranked[0].consumers == ("y",)  # an unnamed Conv is named by its first output
    assert ranked[0].error > 10 * ranked[1].error > 0
    assert keep_fp_for(ranked, 1) == ["y"] and keep_fp_for(ranked, 2) == ["y", "conv1"]
    assert ranked[0].to_json()["tensor"] == "r1"
    again = rank_sensitivity(prepared, {"x": 1.0, "r1": 0.05}, images=2, keep_fp=["y"])
    assert [s.tensor for s in again] == ["x"]
