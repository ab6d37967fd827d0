"""Activation statistics with onnxruntime, streamed over the calibration images.

**Which tensors** (:func:`calibration_tensors`): the float graph inputs and every float
output of every node except ``Constant`` nodes and nodes computing only from constants. That
is the set TensorRT's own calibrator writes to its cache (real caches list the input, every
Conv/Sigmoid/Mul/Add/Concat/Reshape output and the network outputs); the Q/DQ model uses a
subset of them (:mod:`edgesdk.quant.qdq`). They are read in copies of the model
(:func:`activation_model` exposes them whole, :mod:`edgesdk.quant.ingraph` summarises them
in the graph); the model itself is not changed.

**Two passes, bounded memory** (:func:`collect_stats`, :mod:`edgesdk.quant.passes`): pass 1
finds, per tensor, min, max, ``amax = max |x|`` and the count of NaN/inf values; pass 2 adds
``|x|`` to a histogram over the now *fixed* range ``[0, amax]``
(:mod:`edgesdk.quant.histogram`): exactly the histogram the entropy algorithm specifies, no
re-binning. Both passes compute their statistics *inside* the graph
(:mod:`edgesdk.quant.ingraph`: reductions, then int16 bin indices), so only scalars and
2-byte indices leave onnxruntime; tensors whose statistics follow from another's (moved data, a
LeakyReLU's input) are filled in rather than read (:mod:`edgesdk.quant.derive`); two images run
at once; pass 2 replays the pre-processed
inputs of pass 1 from memory (:class:`~edgesdk.quant.streaming.FeedCache`). Tensors with
NaN/inf (found by a non-finite in-graph sum) and non-float32 tensors take the host path
(:class:`TensorStats` methods on whole tensors); non-finite values are counted and left out
of the histogram.
The recipe's own pre-processing (``edgeagent.vision.preprocess``) makes the batches; like the
device's calibrator, a last partial batch is dropped rather than padded with repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgesdk.errors import CalibrationError, DatasetError
from edgesdk.quant.histogram import FINE_BINS, GrowingHistogram, accumulate
from edgesdk.quant.images import decode_image, header_size, read_bytes, reduction_for

if TYPE_CHECKING:
    import onnx
    import onnx_graphsurgeon as gs

    from edgesdk.recipe import Recipe

__all__ = [
    "ActivationStats",
    "ImageBatches",
    "TensorStats",
    "activation_model",
    "calibration_tensors",
    "collect_stats",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each image of each pass (total = passes x images)."""

_FLOATS = (np.float16, np.float32, np.float64)


@dataclass
class TensorStats:
    """What the passes learned about one tensor.

    Attributes:
        name: the ONNX tensor name (what TensorRT's parser calls it).
        lo: smallest finite value (``inf`` before any data).
        hi: largest finite value (``-inf`` before any data).
        count: finite values seen.
        nonfinite: NaN and ±inf values seen (left out of everything else).
        hist: (:data:`~edgesdk.quant.histogram.FINE_BINS`,) int64 counts of ``|x|`` over
            ``[0, amax]`` after pass 2 (None before, or when ``amax`` is 0).
        stream: the growing histogram during a single pass (None otherwise).
    """

    name: str
    lo: float = float("inf")
    hi: float = float("-inf")
    count: int = 0
    nonfinite: int = 0
    hist: np.ndarray | None = None
    stream: GrowingHistogram | None = None

    @property
    def amax(self) -> float:
        """max |x| over the finite values (0.0 before any data)."""
        return max(abs(self.lo), abs(self.hi)) if self.count else 0.0

    def observe_range(self, values: np.ndarray) -> tuple[np.ndarray, float]:
        """Pass 1: fold one batch into min/max/count.

        Returns:
            The batch's finite values (``values`` itself when all are) and their max |x|.
        """
        lo, hi = float(values.min()), float(values.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = np.isfinite(values)
            self.nonfinite += int(values.size - np.count_nonzero(finite))
            values = values[finite]
            if values.size == 0:
                return values, 0.0
            lo, hi = float(values.min()), float(values.max())
        self.count += int(values.size)
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        return values, max(abs(lo), abs(hi))

    def observe_stream(self, values: np.ndarray) -> None:
        """Single pass: ranges and a growing histogram at once (``values`` is overwritten)."""
        finite, batch_amax = self.observe_range(values)
        if self.stream is None:
            self.stream = GrowingHistogram()
        self.stream.add(finite, batch_amax)

    def finish_stream(self) -> None:
        """After a single pass: re-bin the growing histogram to ``[0, amax]``."""
        if self.stream is not None and self.amax > 0:
            self.hist = self.stream.to_fixed(self.amax)
        self.stream = None

    def observe_histogram(self, values: np.ndarray) -> None:
        """Pass 2: add one batch's ``|x|`` to the histogram (``values`` is overwritten)."""
        amax = self.amax
        if amax <= 0:
            return
        if self.hist is None:
            self.hist = np.zeros(FINE_BINS, np.int64)
        if self.nonfinite:
            values = values[np.isfinite(values)]
        accumulate(self.hist, values, amax, clip=False)  # amax came from pass 1 on the same data


@dataclass
class ActivationStats:
    """Statistics of every calibrated tensor over the calibration images.

    Attributes:
        tensors: name -> :class:`TensorStats`, in graph order (input first).
        images: images that went through the network (each pass).
        dropped: images left out because they did not fill a last batch.
        skipped: images that could not be read.
        passes: 1 (ranges only) or 2 (ranges, then histograms).
        seconds_infer: onnxruntime time over all passes (s; summed over the images run at once).
        seconds_stats: time spent updating the statistics (s).
    """

    tensors: dict[str, TensorStats]
    images: int = 0
    dropped: int = 0
    skipped: list[Path] = field(default_factory=list)
    passes: int = 0
    seconds_infer: float = 0.0
    seconds_stats: float = 0.0


def calibration_tensors(graph: gs.Graph) -> list[str]:
    """Names of the tensors TensorRT calibrates, in graph order (see the module docstring).

    A node's outputs are left out when it is a ``Constant`` or all its inputs are constants
    or outputs of such nodes (TensorRT folds those). Tensors without a known dtype are left
    out too (with a log line): run shape inference first. Does not modify ``graph``.
    """
    import onnx_graphsurgeon as gs

    floats = [np.dtype(t) for t in _FLOATS]
    names: list[str] = []
    seen: set[str] = set()
    constant: set[str] = set()

    def add(tensor: gs.Tensor) -> None:
        if not tensor.name or tensor.name in seen:
            return
        seen.add(tensor.name)
        if tensor.dtype is None:
            log.info("tensor %r has no dtype; not calibrated", tensor.name)
        elif np.dtype(tensor.dtype) in floats:
            names.append(tensor.name)

    for tensor in graph.inputs:
        if isinstance(tensor, gs.Constant):
            constant.add(tensor.name)
        else:
            add(tensor)
    for node in graph.copy().toposort().nodes:
        variables = [t for t in node.inputs if t.name and not isinstance(t, gs.Constant)]
        if node.op == "Constant" or all(t.name in constant for t in variables):
            constant.update(t.name for t in node.outputs)
            continue
        for tensor in node.outputs:
            add(tensor)
    return names


def activation_model(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are its own followed by the tensors ``names``.

    Graph inputs in ``names`` are skipped (the caller has the feed). The original model is
    not modified.

    Raises:
        CalibrationError: a name is not a tensor of the model, or has no dtype.
    """
    from edgesdk.graph.io import to_graph, to_model

    graph = to_graph(model)
    tensors = graph.tensors()
    inputs = {t.name for t in graph.inputs}
    outputs = {t.name for t in graph.outputs}
    for name in names:
        tensor = tensors.get(name)
        if tensor is None or tensor.dtype is None:
            raise CalibrationError(f"tensor {name!r} is not a typed tensor of the model; cannot calibrate it")
        if name not in inputs and name not in outputs:
            graph.outputs.append(tensor)
            outputs.add(name)
    return to_model(graph, like=model)


class ImageBatches:
    """The recipe's pre-processed (N, C, H, W) float32 input batches over image files.

    Each iteration starts over from the first image and holds one batch at a time. Images
    that cannot be read are skipped (listed in :attr:`skipped`); a last partial batch is
    dropped (counted in :attr:`dropped`), as the device's calibrator does.

    Args:
        paths: image files, in the order to use.
        recipe: supplies the input shape and the ``preprocess`` parameters.
    """

    def __init__(self, paths: Sequence[Path], recipe: Recipe) -> None:
        self.paths = [Path(p) for p in paths]
        self.batch = recipe.input.batch
        self.grey = recipe.input.shape[1] == 1
        self.hw = recipe.input.hw
        self.params = recipe.resolved()["preprocess"]
        self.skipped: list[Path] = []
        self.dropped = 0

    def __len__(self) -> int:
        """Images a full iteration uses (an upper bound until unreadable files are known)."""
        return (len(self.paths) - len(self.skipped)) // self.batch * self.batch

    def _read(self, path: Path) -> np.ndarray | None:
        data = read_bytes(path)
        image = None
        if data:
            image = decode_image(data, reduce=reduction_for(header_size(data)), grey=self.grey)
        if image is None and path not in self.skipped:
            log.warning("cannot read calibration image %s; skipped", path)
            self.skipped.append(path)
        return image

    def __iter__(self) -> Iterator[np.ndarray]:
        from edgeagent.vision.preprocess import preprocess_batch

        frames: list[np.ndarray] = []
        for path in self.paths:
            image = self._read(path)
            if image is None:
                continue
            frames.append(image)
            if len(frames) == self.batch:
                yield preprocess_batch(frames, self.hw, self.params)[0]
                frames = []
        self.dropped = len(frames)


def collect_stats(
    model: onnx.ModelProto,
    batches: ImageBatches,
    *,
    input_name: str | None = None,
    tensors: Sequence[str] | None = None,
    histograms: bool = True,
    passes: int = 2,
    progress: ProgressFn | None = None,
    derive: bool = True,
) -> ActivationStats:
    """Run the calibration batches through ``model`` on onnxruntime and gather statistics.

    Args:
        model: the exported model (the recipe's fixes applied).
        batches: the calibration input batches.
        input_name: the model input to feed (default: its first graph input).
        tensors: tensors to gather (default: :func:`calibration_tensors`).
        histograms: gather histograms; without them only ranges (enough for minmax), one pass.
        passes: 2 (default): ranges, then histograms over the exact ``[0, amax]``, both
            computed in the graph (:mod:`edgesdk.quant.ingraph`); 1: one onnxruntime pass with
            every tensor exposed and :class:`~edgesdk.quant.histogram.GrowingHistogram`
            (each value may land up to 1/16 of an entropy bin off).
        progress: called as ``progress(done, total)`` after each image of each pass.
        derive: in two passes, fill in the tensors whose statistics follow from another's
            (moved data, a LeakyReLU's input: :mod:`edgesdk.quant.derive`) instead of reading
            them, which keeps onnxruntime's Conv+activation fusions.

    Returns:
        The :class:`ActivationStats`.

    Raises:
        DatasetError: not one full batch of readable images.
        CalibrationError: a tensor name is unknown.
        GraphError: onnxruntime cannot load or run the model.
    """
    from edgesdk.graph.io import to_graph
    from edgesdk.quant.derive import derivations
    from edgesdk.quant.ingraph import in_graph_tensors
    from edgesdk.quant.passes import histogram_pass, range_pass, stream_pass
    from edgesdk.quant.streaming import FeedCache

    if passes not in (1, 2):
        raise CalibrationError(f"statistics take 1 or 2 passes, not {passes}")
    graph = to_graph(model)
    names = list(tensors) if tensors is not None else calibration_tensors(graph)
    feed_name = input_name or model.graph.input[0].name
    stats = ActivationStats(tensors={name: TensorStats(name) for name in names})
    passes = passes if histograms else 1
    single = histograms and passes == 1
    expected = len(batches)
    done = 0

    def tick(images: int) -> None:
        nonlocal done
        done += images
        if progress is not None:
            progress(done, passes * expected)

    feeds = FeedCache(batches, budget=0 if passes == 1 else None)
    in_graph = in_graph_tensors(graph, names)
    derived = derivations(graph, in_graph) if derive else {}
    if single:
        stream_pass(model, feeds, feed_name, stats, tick)
    else:
        range_pass(model, feeds, feed_name, stats, tick, in_graph, derived)
    stats.passes = 1
    stats.images, stats.dropped, stats.skipped = done, batches.dropped, list(batches.skipped)
    if stats.images == 0:
        raise DatasetError(
            f"no full batch of {batches.batch} readable calibration images "
            f"({len(batches.paths)} given, {len(batches.skipped)} unreadable)"
        )
    if histograms and passes == 2:
        stats.passes, expected = 2, stats.images
        histogram_pass(model, feeds, feed_name, stats, tick, in_graph, derived)
    return stats
