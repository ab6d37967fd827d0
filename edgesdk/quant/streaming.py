"""Streaming calibration passes: onnxruntime runs the next batch while the host folds the last one.

- :func:`calibration_runner`: an onnxruntime CPU session tuned for calibration (all graph
  optimisations, one intra-op thread per core, optionally no spin-waiting so that the host
  thread folding the previous batch gets the cores it needs).
- :class:`FeedCache`: replays the pre-processed batches of the first pass in later passes
  when they fit in :data:`FEED_CACHE_BYTES` (decoding and resizing 64 images again costs
  ~0.5 s), else reads them again.
- :func:`run_pass`: one pass, a producer thread running onnxruntime (it releases the GIL)
  and the calling thread folding each batch's outputs into the statistics. At most two
  batches' outputs exist at a time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ["FEED_CACHE_BYTES", "FeedCache", "PassTimes", "Runner", "calibration_runner", "run_pass"]

log = logging.getLogger(__name__)

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
"""Runs the model on a feed and returns every output by name."""

FEED_CACHE_BYTES = 768 * 2**20
"""Pre-processed input bytes :class:`FeedCache` keeps for later passes (768 MiB)."""


def calibration_runner(
    model: onnx.ModelProto, *, threads: int | None = None, spinning: bool = True
) -> Runner:
    """Load ``model`` into an onnxruntime CPU session for calibration passes.

    The runner may be called from several threads at once (onnxruntime sessions allow it).

    Args:
        model: the (augmented) model.
        threads: intra-op threads (default: one per core).
        spinning: let idle intra-op threads spin-wait; off when the host works in parallel.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        GraphError: onnxruntime cannot load the model (or, when run, cannot run it).
    """
    from edgesdk.graph.io import onnxruntime_runner

    return onnxruntime_runner(model, threads=threads or os.cpu_count() or 1, spinning=spinning)


class FeedCache:
    """Iterates ``batches``; the first full iteration is kept for replay if it fits in ``budget`` bytes.

    Args:
        batches: re-iterable input batches (e.g. :class:`~edgesdk.quant.stats.ImageBatches`).
        budget: bytes to keep at most (0: never keep; default :data:`FEED_CACHE_BYTES`).
    """

    def __init__(self, batches: Iterable[np.ndarray], budget: int | None = None) -> None:
        self.batches = batches
        self.budget = FEED_CACHE_BYTES if budget is None else budget
        self.kept: list[np.ndarray] | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.kept is not None:
            yield from self.kept
            return
        kept: list[np.ndarray] | None = []
        size = 0
        for feed in self.batches:
            if kept is not None:
                size += feed.nbytes
                if size <= self.budget:
                    kept.append(feed)
                else:
                    kept = None
            yield feed
        self.kept = kept


_DONE = object()


class PassTimes:
    """Seconds one pass spent in onnxruntime (``infer``) and folding outputs (``fold``)."""

    def __init__(self) -> None:
        self.infer = 0.0
        self.fold = 0.0


def _hand_over(results: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer stopped; False when it did."""
    while not stop.is_set():
        try:
            results.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(
    run: Runner,
    feeds: Iterator[np.ndarray],
    lock: threading.Lock,
    input_name: str,
    results: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """Worker: take the next batch (read and pre-processed under ``lock``), run it, hand
    (outputs, seconds, images) over; ``_DONE`` when the batches are exhausted."""
    try:
        while not stop.is_set():
            with lock:
                feed = next(feeds, None)
            if feed is None:
                break
            started = time.perf_counter()
            outputs = run({input_name: feed})
            outputs[input_name] = feed
            if not _hand_over(results, (outputs, time.perf_counter() - started, feed.shape[0]), stop):
                return
        _hand_over(results, _DONE, stop)
    except BaseException as err:  # handed to the consumer, which re-raises it
        _hand_over(results, err, stop)


def run_pass(
    run: Runner,
    feeds: Iterable[np.ndarray],
    input_name: str,
    fold: Callable[[dict[str, np.ndarray]], object],
    tick: Callable[[int], None],
    *,
    workers: int = 1,
) -> PassTimes:
    """One pass over ``feeds``: ``workers`` threads run onnxruntime on the next batches (it
    releases the GIL; one session may run concurrently) while this thread calls
    ``fold(outputs)`` (outputs by name, the feed under ``input_name``) on each finished one,
    in completion order, then ``tick(images)``. At most ``2 * workers + 1`` batches' outputs
    exist at a time.

    Returns:
        The pass's :class:`PassTimes` (``infer`` summed over the workers).

    Raises:
        Whatever a worker or ``fold`` raised.
    """
    times = PassTimes()
    results: queue.Queue[Any] = queue.Queue(maxsize=workers)
    stop = threading.Event()
    shared = (iter(feeds), threading.Lock())
    threads = [
        threading.Thread(target=_produce, args=(run, *shared, input_name, results, stop), daemon=True)
        for _ in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = results.get()
            if item is _DONE:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            outputs, seconds, images = item
            times.infer += seconds
            started = time.perf_counter()
            fold(outputs)
            del outputs, item
            times.fold += time.perf_counter() - started
            tick(images)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return times
