"""The calibration passes behind :func:`edgesdk.quant.stats.collect_stats`.

- :func:`range_pass` (pass 1): min, max and count of every tensor. float32 tensors are
  reduced in the graph (:func:`edgesdk.quant.ingraph.range_model`); the others come out whole
  and are reduced on the host. A tensor whose in-graph sum is not finite (NaN or inf
  somewhere) is measured again on the host in a repair pass, which also counts the
  non-finite values exactly.
- :func:`histogram_pass` (pass 2): the ``|x|`` histogram over ``[0, amax]``. float32 tensors
  come out as int16 bin indices computed in the graph
  (:func:`edgesdk.quant.ingraph.index_model`) and are counted on the host
  (:class:`~edgesdk.quant.histogram.IndexCounter`); the others
  (and the repaired ones) are histogrammed on the host from their values.
- :func:`stream_pass`: the single-pass variant (every tensor whole, growing histograms).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from edgesdk.quant.histogram import FINE_BINS, IndexCounter
from edgesdk.quant.streaming import calibration_runner, run_pass

if TYPE_CHECKING:
    import onnx

    from edgesdk.quant.derive import Derived
    from edgesdk.quant.stats import ActivationStats, TensorStats

__all__ = ["histogram_pass", "range_pass", "stream_pass"]

log = logging.getLogger(__name__)

Tick = Callable[[int], None]


WORKERS = 2
"""Batches onnxruntime runs at once in the in-graph passes (on ``cores // WORKERS`` threads
each): whole images in parallel scale better than one image's small layers over all cores."""


def _parallel() -> tuple[int, int]:
    """(workers, intra-op threads per run) for this machine."""
    cores = os.cpu_count() or 1
    workers = max(1, min(WORKERS, cores))
    return workers, max(1, cores // workers)


def _no_tick(images: int) -> None:
    del images


def _host_pass(
    model: onnx.ModelProto,
    feeds: Iterable[np.ndarray],
    input_name: str,
    stats: ActivationStats,
    tick: Tick,
    names: Sequence[str],
    update: Callable[[TensorStats, np.ndarray], object],
) -> None:
    """A pass with the tensors ``names`` exposed whole and ``update`` applied on the host."""
    from edgesdk.quant.stats import activation_model

    run = calibration_runner(activation_model(model, names))

    def fold(outputs: dict[str, np.ndarray]) -> None:
        for name in names:
            update(stats.tensors[name], outputs[name])

    times = run_pass(run, feeds, input_name, fold, tick)
    stats.seconds_infer += times.infer
    stats.seconds_stats += times.fold


def stream_pass(
    model: onnx.ModelProto, feeds: Iterable[np.ndarray], input_name: str, stats: ActivationStats, tick: Tick
) -> None:
    """Single pass: ranges and growing histograms of every tensor, on the host."""
    from edgesdk.quant.stats import TensorStats

    names = list(stats.tensors)
    _host_pass(model, feeds, input_name, stats, tick, names, TensorStats.observe_stream)
    for tensor_stats in stats.tensors.values():
        tensor_stats.finish_stream()


def range_pass(
    model: onnx.ModelProto,
    feeds: Iterable[np.ndarray],
    input_name: str,
    stats: ActivationStats,
    tick: Tick,
    in_graph: Sequence[str],
    derived: Mapping[str, Derived] | None = None,
) -> None:
    """Pass 1: min, max, count (and non-finite count) of every tensor of ``stats``.

    Args:
        in_graph: the float32 tensors to reduce in the graph; the rest come out whole.
        derived: tensors not measured but filled in from their source
            (:func:`edgesdk.quant.derive.derivations`).
    """
    from edgesdk.quant.derive import fill_range
    from edgesdk.quant.ingraph import range_model
    from edgesdk.quant.stats import TensorStats

    derived = derived or {}
    fast = [n for n in stats.tensors if n in set(in_graph) and n not in derived]
    host = [n for n in stats.tensors if n not in set(fast) and n not in derived]
    augmented, probes = range_model(model, fast, raw=host)
    workers, threads = _parallel()
    run = calibration_runner(augmented, threads=threads)
    repair: set[str] = set()

    def fold(outputs: dict[str, np.ndarray]) -> None:
        for name, probe in probes.items():
            if name in repair:
                continue
            total = float(outputs[probe.total])
            if not math.isfinite(total):
                repair.add(name)
                continue
            tensor_stats = stats.tensors[name]
            tensor_stats.lo = min(tensor_stats.lo, float(outputs[probe.lo]))
            tensor_stats.hi = max(tensor_stats.hi, float(outputs[probe.hi]))
            tensor_stats.count += int(outputs[probe.size])
        for name in host:
            stats.tensors[name].observe_range(outputs[name])

    times = run_pass(run, feeds, input_name, fold, tick, workers=workers)
    stats.seconds_infer += times.infer
    stats.seconds_stats += times.fold
    if repair:
        names = [n for n in fast if n in repair]
        log.info("%d tensor(s) hold NaN/inf or overflow a float32 sum; ranging them on the host", len(names))
        for name in names:
            stats.tensors[name] = TensorStats(name)
        _host_pass(model, feeds, input_name, stats, _no_tick, names, TensorStats.observe_range)
    for name, how in derived.items():
        fill_range(stats.tensors[name], stats.tensors[how.source], how.alpha)


def histogram_pass(
    model: onnx.ModelProto,
    feeds: Iterable[np.ndarray],
    input_name: str,
    stats: ActivationStats,
    tick: Tick,
    in_graph: Sequence[str],
    derived: Mapping[str, Derived] | None = None,
) -> None:
    """Pass 2: the :data:`~edgesdk.quant.histogram.FINE_BINS` ``|x|`` histogram over
    ``[0, amax]`` of every tensor with ``amax > 0`` (after :func:`range_pass`).

    Args:
        in_graph: float32 tensors whose bin indices may be computed in the graph; those with
            non-finite values are histogrammed on the host instead.
        derived: as for :func:`range_pass`: moved data copies its source's histogram; a
            LeakyReLU's input is binned from the LeakyReLU's output in the graph (or read
            itself when either holds non-finite values).
    """
    from edgesdk.quant.derive import fill_histogram
    from edgesdk.quant.ingraph import index_model

    derived = derived or {}
    allowed = set(in_graph)
    live = [s for s in stats.tensors.values() if s.amax > 0]
    copies = {n: d.source for n, d in derived.items() if d.alpha is None}
    scales = {
        s.name: np.float32(FINE_BINS / s.amax)
        for s in live
        if s.name in allowed and not s.nonfinite and s.name not in copies
    }
    unleak = {
        name: (how.source, how.alpha)
        for name, how in derived.items()
        if how.alpha is not None and name in scales and how.source in scales
    }
    host = [s.name for s in live if s.name not in scales and s.name not in copies]
    augmented, indices = index_model(model, scales, raw=host, unleak=unleak)
    workers, threads = _parallel()
    run = calibration_runner(augmented, threads=threads, spinning=False)  # this thread counts meanwhile
    counters = {name: IndexCounter(FINE_BINS) for name in indices}

    def fold(outputs: dict[str, np.ndarray]) -> None:
        for name, index in indices.items():
            counters[name].add(outputs[index])
        for name in host:
            stats.tensors[name].observe_histogram(outputs[name])

    times = run_pass(run, feeds, input_name, fold, tick, workers=workers)
    for name, counter in counters.items():
        stats.tensors[name].hist = counter.histogram()
    for name, source in copies.items():
        fill_histogram(stats.tensors[name], stats.tensors[source])
    stats.seconds_infer += times.infer
    stats.seconds_stats += times.fold
