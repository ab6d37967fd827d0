"""Streaming passes: every batch folded once with several workers, errors surface, feeds replayed."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import pytest

from edgesdk.errors import GraphError
from edgesdk.graph.io import to_model
from edgesdk.quant.streaming import FeedCache, calibration_runner, run_pass


def _feeds(count: int) -> list[np.ndarray]:
    return [np.full((1, 3), float(i), np.float32) for i in range(count)]


class _Counting:
    """A re-iterable that counts how often it was iterated."""

    def __init__(self, items: list[np.ndarray]) -> None:
        self.items = items
        self.iterations = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.iterations += 1
        yield from self.items


def test_feed_cache_replays_the_first_iteration() -> None:
    source = _Counting(_feeds(4))
    cache = FeedCache(source)
    assert [f[0, 0] for f in cache] == [0, 1, 2, 3]
    assert [f[0, 0] for f in cache] == [0, 1, 2, 3]
    assert source.iterations == 1
    small = FeedCache(source, budget=2 * 12)  # two 12-byte feeds fit, four do not
    list(small)
    list(small)
    assert source.iterations == 3 and small.kept is None


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_run_pass_folds_every_batch_once(workers: int) -> None:
    calls = []
    lock = threading.Lock()

    def run(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with lock:
            calls.append(threading.get_ident())
        return {"double": feed["x"] * 2}

    seen: list[float] = []
    ticks: list[int] = []
    times = run_pass(
        run,
        _feeds(9),
        "x",
        lambda out: seen.append(float(out["double"][0, 0])),
        ticks.append,
        workers=workers,
    )
    assert sorted(seen) == [2.0 * i for i in range(9)] and ticks == [1] * 9
    assert len(calls) == 9 and times.infer >= 0 and times.fold >= 0


def test_run_pass_raises_what_the_worker_raised() -> None:
    def run(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if feed["x"][0, 0] == 3:
            raise GraphError("boom")
        return {}

    with pytest.raises(GraphError, match="boom"):
        run_pass(run, _feeds(8), "x", lambda out: None, lambda n: None, workers=2)


def test_calibration_runner_runs_and_reports_missing_inputs() -> None:
    import onnx_graphsurgeon as gs

    x = gs.Variable("x", np.float32, [1, 3])
    y = gs.Variable("y", np.float32, [1, 3])
    model = to_model(gs.Graph([gs.Node("Relu", "r", {}, [x], [y])], [x], [y], opset=13))
    run = calibration_runner(model, threads=1, spinning=False)
    out = run({"x": np.array([[-1.0, 0.0, 2.0]], np.float32)})
    assert out["y"].tolist() == [[0.0, 0.0, 2.0]]
    with pytest.raises(GraphError, match="no input data"):
        run({})
