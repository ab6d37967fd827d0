"""inspect: params and FLOPs by hand on tiny graphs; yolov5n's published numbers; loading by path/recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from edgesdk.graph.inspect import count_flops, inspect_model, inspect_source, load_for_inspect
from edgesdk.graph.io import infer_shapes, load_model, to_model

F32 = np.float32


def _net() -> gs.Graph:
    """x [1,3,8,8] -> Conv 3x3 (4, pad 1, bias) -> Relu -> MaxPool 2x2/2 -> Flatten -> Gemm (64 -> 10)."""
    rng = np.random.default_rng(0)
    x = gs.Variable("x", dtype=F32, shape=[1, 3, 8, 8])
    t = [gs.Variable(n, dtype=F32) for n in ("c", "r", "p", "f")]
    y = gs.Variable("y", dtype=F32, shape=[1, 10])
    w, b = gs.Constant("w", rng.standard_normal((4, 3, 3, 3)).astype(F32)), gs.Constant("b", np.zeros(4, F32))
    gw, gb = (
        gs.Constant("gw", rng.standard_normal((64, 10)).astype(F32)),
        gs.Constant("gb", np.zeros(10, F32)),
    )
    nodes = [
        gs.Node("Conv", inputs=[x, w, b], outputs=[t[0]], attrs={"pads": [1, 1, 1, 1]}),
        gs.Node("Relu", inputs=[t[0]], outputs=[t[1]]),
        gs.Node("MaxPool", inputs=[t[1]], outputs=[t[2]], attrs={"kernel_shape": [2, 2], "strides": [2, 2]}),
        gs.Node("Flatten", inputs=[t[2]], outputs=[t[3]]),
        gs.Node("Gemm", inputs=[t[3], gw, gb], outputs=[y]),
    ]
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=13)


class TestByHand:
    def test_tiny_net(self) -> None:
        s = inspect_model(to_model(_net()))
        assert s.params == 4 * 3 * 3 * 3 + 4 + 64 * 10 + 10 == 762
        assert s.initializers == 4
        # Conv: 256 outputs x 27 MACs; Gemm: 10 outputs x 64 MACs; FLOPs = 2 x MACs
        assert s.flops == 2 * (256 * 27 + 10 * 64) == 15104
        # Relu: 1 per element (256); MaxPool: 2x2 window per output (64 x 4)
        assert s.other_flops == 256 + 64 * 4
        assert s.uncounted == []
        assert s.ops == {"Conv": 1, "Flatten": 1, "Gemm": 1, "MaxPool": 1, "Relu": 1}
        assert [(t.name, t.shape, t.dtype) for t in s.inputs] == [("x", [1, 3, 8, 8], "float32")]
        assert s.outputs[0].shape == [1, 10] and s.opset == 13 and s.lint == [] and s.trt is None

    @pytest.mark.parametrize(
        "op,in_shape,weight,attrs,macs",
        [
            (
                "Conv",
                [1, 4, 8, 8],
                (4, 1, 3, 3),
                {"group": 4, "pads": [1, 1, 1, 1]},
                4 * 8 * 8 * 9,
            ),  # depthwise
            ("ConvTranspose", [1, 2, 4, 4], (2, 3, 3, 3), {}, 2 * 4 * 4 * 3 * 9),  # per input element
        ],
    )
    def test_conv_variants(
        self, op: str, in_shape: list[int], weight: tuple[int, ...], attrs: dict, macs: int
    ) -> None:
        x, y = gs.Variable("x", dtype=F32, shape=in_shape), gs.Variable("y", dtype=F32)
        w = gs.Constant("w", np.ones(weight, F32))
        graph = gs.Graph(
            nodes=[gs.Node(op, inputs=[x, w], outputs=[y], attrs=attrs)], inputs=[x], outputs=[y], opset=13
        )
        assert count_flops(infer_shapes(graph))[0] == 2 * macs

    def test_batched_matmul(self) -> None:
        a, y = gs.Variable("a", dtype=F32, shape=[2, 3, 4]), gs.Variable("y", dtype=F32)
        b = gs.Constant("b", np.ones((4, 5), F32))
        graph = gs.Graph(
            nodes=[gs.Node("MatMul", inputs=[a, b], outputs=[y])], inputs=[a], outputs=[y], opset=13
        )
        assert count_flops(infer_shapes(graph))[0] == 2 * (2 * 3 * 5 * 4)

    def test_unknown_shapes_are_listed(self) -> None:
        graph = _net()
        graph.inputs[0].shape = ["N", 3, "H", "W"]
        s = inspect_model(to_model(graph))
        assert s.flops == 0 and {"Conv", "Gemm"} <= set(s.uncounted)


class TestRealModels:
    def test_yolov5n(self, models_dir: Path) -> None:
        s = inspect_model(load_model(models_dir / "yolov5n_coco" / "yolov5n.onnx"), trt="8.5")
        assert s.params == 1_867_405  # the model README: 120 initializers, 1,867,405 values
        assert s.initializers == 120
        assert 4.4e9 < s.flops < 4.6e9  # ultralytics: 4.5 GFLOPs at 640
        assert s.ops["Conv"] == 60 and s.ops["Constant"] == 77 and s.nodes == 340
        assert s.outputs[0].shape == [1, 25200, 85] and s.opset == 12
        assert s.metadata["stride"] == "32" and s.producer == "pytorch 2.13.0"
        assert s.trt == "8.5" and any(f.rule == "dynamic-resize" for f in s.lint) and s.errors == 0
        data = json.loads(json.dumps(s.to_json()))
        assert data["gflops"] == pytest.approx(s.flops / 1e9, abs=1e-4) and data["lint"][0]["severity"]

    def test_yolox_nano_params(self, models_dir: Path) -> None:
        s = inspect_model(load_model(models_dir / "yolox_nano_coco" / "yolox_nano_416x416.onnx"))
        assert s.params == 904_463  # the model README
        assert 0.9e9 < s.flops < 1.2e9


class TestLoad:
    def test_onnx_path(self, models_dir: Path) -> None:
        path = models_dir / "yunet_n" / "yunet_n_640_640.onnx"
        model, source = load_for_inspect(str(path))
        assert source == str(path) and model.graph.input[0].name == "input"

    def test_onnx_recipe(self, models_dir: Path) -> None:
        s = inspect_source("yunet", model_dir=models_dir, trt="10.3")
        assert s.source.startswith("recipe yunet: ") and len(s.outputs) == 12 and s.errors == 0

    def test_darknet_recipe_goes_through_the_importer(self, models_dir: Path) -> None:
        s = inspect_source("yolo-fastest", model_dir=models_dir)
        assert s.ops["Conv"] == 84 and s.inputs[0].shape == [1, 3, 320, 320]
        assert s.source.endswith("yolo-fastest-1.1.cfg")
