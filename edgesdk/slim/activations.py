"""Activations for the data-driven methods: calibration feeds, intermediate outputs, conv patches.

* :func:`calibration_feeds`: images pre-processed exactly as the device does it.
* :class:`Probe`: runs a graph on onnxruntime with chosen intermediate tensors as outputs
  (the graph is cut right after them, so only what is needed is computed).
* :class:`ConvWindow` / :func:`patches`: the input window (``C x kh x kw``) each sampled
  output position of a Conv reads, zero-padded as the Conv pads, so a layer's output can be
  rebuilt exactly from ``patch @ weight``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.errors import DatasetError, PruneError
from edgesdk.graph._util import quiet_gs, static_shape
from edgesdk.graph.io import onnxruntime_runner, to_model
from edgesdk.recipe import Recipe

Feed = dict[str, np.ndarray]


def calibration_feeds(
    recipe: Recipe, model: onnx.ModelProto, folder: Path, count: int
) -> tuple[list[Feed], int]:
    """Up to ``count`` images of ``folder`` (sorted), pre-processed by the recipe, batched.

    Returns:
        (feeds ``{input: NCHW float32}`` with the recipe's batch size, images used).

    Raises:
        ArtifactNotFound / DatasetError: no folder, no images, unreadable image.
    """
    import cv2

    from edgeagent.vision.preprocess import preprocess_batch
    from edgesdk.export import list_images

    paths = list_images(folder, limit=count)
    inits = {i.name for i in model.graph.initializer}
    name = recipe.input.name or next(i.name for i in model.graph.input if i.name not in inits)
    params = recipe.resolved()["preprocess"]
    batch = recipe.input.batch
    feeds = []
    for start in range(0, len(paths), batch):
        frames = []
        for path in paths[start : start + batch]:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DatasetError(f"cannot read image {path} (not an image, or truncated)")
            frames.append(frame)
        frames += [frames[-1]] * (batch - len(frames))
        tensor, _ = preprocess_batch(frames, recipe.input.hw, params)
        feeds.append({name: tensor})
    return feeds, len(paths)


class Probe:
    """Run ``graph`` (not modified) with ``names`` as its only outputs.

    Raises:
        PruneError: a name is not a tensor of the graph.
    """

    def __init__(self, graph: gs.Graph, names: Sequence[str]) -> None:
        cut = graph.copy()
        tensors = cut.tensors()
        missing = [n for n in names if n not in tensors]
        if missing:
            raise PruneError(f"cannot sample activations: no tensor(s) {missing[:3]} in the graph")
        outputs = []
        for name in dict.fromkeys(names):
            tensor = tensors[name]
            if tensor.dtype is None:
                tensor.dtype = np.float32
            outputs.append(tensor)
        cut.outputs = outputs
        with quiet_gs():
            cut.cleanup()
        self._run = onnxruntime_runner(to_model(cut))

    def run(self, feeds: Sequence[Feed]) -> Iterator[dict[str, np.ndarray]]:
        """The requested tensors for each feed, in order."""
        for feed in feeds:
            yield self._run(feed)


@dataclass(frozen=True)
class ConvWindow:
    """Geometry of a 2-D Conv: kernel, strides, dilations and the padding actually applied."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right

    @classmethod
    def of(cls, node: gs.Node) -> ConvWindow:
        """The window of a Conv node with static input/output shapes.

        Raises:
            PruneError: not a 2-D Conv, or shapes unknown.
        """
        weight_shape = static_shape(node.inputs[1])
        x, y = static_shape(node.inputs[0]), static_shape(node.outputs[0])
        if weight_shape is None or x is None or y is None or len(weight_shape) != 4:
            raise PruneError(
                f"cannot sample {node.name!r}: only 2-D convolutions with static shapes are refitted"
            )
        kernel = (weight_shape[2], weight_shape[3])
        strides = tuple(node.attrs.get("strides", [1, 1]))
        dilations = tuple(node.attrs.get("dilations", [1, 1]))
        auto_pad = node.attrs.get("auto_pad", "NOTSET")
        if isinstance(auto_pad, bytes):
            auto_pad = auto_pad.decode()
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for axis in range(2):
                span = (kernel[axis] - 1) * dilations[axis] + 1
                total = max(0, (y[2 + axis] - 1) * strides[axis] + span - x[2 + axis])
                small = total // 2
                pads.append((total - small, small) if auto_pad == "SAME_LOWER" else (small, total - small))
            padding = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
        else:
            raw = list(node.attrs.get("pads", [0, 0, 0, 0])) if auto_pad != "VALID" else [0, 0, 0, 0]
            padding = (raw[0], raw[1], raw[2], raw[3])
        return cls(
            kernel, (int(strides[0]), int(strides[1])), (int(dilations[0]), int(dilations[1])), padding
        )


def patches(x: np.ndarray, window: ConvWindow, oy: np.ndarray, ox: np.ndarray) -> np.ndarray:
    """Input windows of one image at output positions ``(oy, ox)``.

    Args:
        x: one image's Conv input, ``[C, H, W]``.
        window: the Conv's geometry.
        oy / ox: output rows / columns, ``[S]`` each.

    Returns:
        ``[S, C, kh * kw]`` float32: ``patch @ W.reshape(O, -1).T + b`` is the Conv output there.
    """
    top, left, bottom, right = window.pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.strides, window.dilations
    rows = oy[:, None] * sh + np.arange(kh)[None, :] * dh  # [S, kh]
    cols = ox[:, None] * sw + np.arange(kw)[None, :] * dw  # [S, kw]
    out = padded[:, rows[:, :, None], cols[:, None, :]]  # [C, S, kh, kw]
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3).reshape(len(oy), x.shape[0], kh * kw))


def positions_per_image(unknowns: int, images: int, per_unknown: float, bounds: tuple[int, int]) -> int:
    """Output positions to sample per image so a fit of ``unknowns`` unknowns gets ``per_unknown``
    equations each over ``images`` images, within ``bounds``."""
    return int(np.clip(per_unknown * unknowns // max(1, images) + 1, *bounds))


def sample_positions(
    rng: np.random.Generator, out_hw: tuple[int, int], count: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct output positions (all of them when there are fewer)."""
    total = out_hw[0] * out_hw[1]
    flat = rng.choice(total, size=min(count, total), replace=False)
    return flat // out_hw[1], flat % out_hw[1]
