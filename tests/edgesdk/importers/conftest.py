"""Fixtures for the importer tests: tiny darknet models written with numpy, and runners.

Test modules run with ``--import-mode=importlib`` and cannot import each other, so the
helpers are handed out as fixtures.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgesdk.importers.darknet_cfg import ConvSpec, parse_cfg
from edgesdk.importers.darknet_shapes import infer_shapes, input_shapes

WriteDarknet = Callable[..., tuple[Path, Path]]
Runner = Callable[..., list[np.ndarray]]


def random_weights(cfg_text: str, seed: int) -> bytes:
    """A darknet .weights file (20-byte header + floats) with sane random values for ``cfg_text``.

    Kernels ~ N(0, 1/fan_in) keep activations O(1); BN variances are positive.
    """
    cfg = parse_cfg(cfg_text)
    inputs = input_shapes(cfg, infer_shapes(cfg))
    rng = np.random.default_rng(seed)
    chunks = [np.array([0, 2, 5], dtype="<i4").tobytes(), np.array([1234], dtype="<i8").tobytes()]
    for spec in cfg.layers:
        if not isinstance(spec, ConvSpec):
            continue
        f, cin = spec.filters, inputs[spec.index][0] // spec.groups
        parts = [rng.normal(0.0, 0.3, f)]  # bias / BN beta
        if spec.batch_normalize:
            parts += [rng.uniform(0.5, 1.5, f), rng.normal(0.0, 0.3, f), rng.uniform(0.3, 2.0, f)]
        fan_in = cin * spec.size * spec.size
        parts.append(rng.normal(0.0, 1.0 / np.sqrt(fan_in), f * fan_in))
        chunks.append(np.concatenate(parts).astype("<f4").tobytes())
    return b"".join(chunks)


@pytest.fixture()
def write_darknet(tmp_path: Path) -> WriteDarknet:
    """``write(cfg_text, name="tiny", seed=0) -> (cfg_path, weights_path)`` in tmp_path."""

    def write(cfg_text: str, name: str = "tiny", seed: int = 0) -> tuple[Path, Path]:
        text = textwrap.dedent(cfg_text).strip() + "\n"
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(text)
        weights = tmp_path / f"{name}.weights"
        weights.write_bytes(random_weights(text, seed))
        return cfg, weights

    return write


def _opencv_heads(cfg: Path, weights: Path, blob: np.ndarray) -> list[np.ndarray]:
    import cv2

    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    names = list(net.getLayerNames())
    # OpenCV inserts permute_<i> right before each yolo_<i>: the layer before it is the raw head.
    feeders = [names[k - 1] for k, n in enumerate(names) if n.startswith("permute_")]
    net.setInput(blob)
    return [np.asarray(out) for out in net.forward(feeders)]


def _ort_outputs(model_bytes: bytes, blob: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in sess.run(None, {"images": blob})]


@pytest.fixture(scope="session")
def opencv_heads() -> Runner:
    """``run(cfg, weights, blob)``: OpenCV's darknet net forwarded to the convs feeding each [yolo]."""
    return _opencv_heads


@pytest.fixture(scope="session")
def ort_outputs() -> Runner:
    """``run(model_bytes, blob)``: every output of an ONNX model on onnxruntime (CPU), in graph order."""
    return _ort_outputs
