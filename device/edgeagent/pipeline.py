"""Camera inference, overlapped: capture -> pre-process -> infer -> decode -> draw/sink in threads.

Live sources run one thread per stage; files pre-process in the capture thread (nothing is
dropped, so no work is wasted, and the frame is still in cache). Stages hand frames on through bounded queues, so throughput is set by the slowest stage rather
than by the sum of all of them, and memory stays flat. A live source's queue drops its OLDEST
frame when full (the newest frame is the one worth showing); a file's queue blocks, so nothing is
dropped. Every frame records its milliseconds per stage and its end-to-end latency (capture
returned -> sinks done).

Shutdown: at the source's end, at ``max_frames``/``duration`` (the frames in flight are finished),
on Ctrl-C in the calling thread, on :meth:`Pipeline.stop`, and when a sink raises
:class:`~edgeagent.sinks.StopStream`. An exception in any stage stops every stage and is raised
in the caller as :class:`PipelineError` naming the stage.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from edgeagent.backends.base import Backend
from edgeagent.capture import Frame, Source
from edgeagent.events import EXIT_FAILED, AgentError, BadInput
from edgeagent.pipeline_stats import STAGES, PipelineStats
from edgeagent.sinks import Sink, StopStream, StreamInfo
from edgeagent.vision.classes import class_names
from edgeagent.vision.draw import draw_detections, draw_stats
from edgeagent.vision.postprocess import postprocess
from edgeagent.vision.preprocess import Preprocessor, Transform
from edgeagent.vision.types import Detections

log = logging.getLogger(__name__)

__all__ = ["STAGES", "ModelParams", "Pipeline", "PipelineError", "PipelineStats", "model_params"]


class PipelineError(AgentError):
    """A stage failed; ``stage`` names it and ``error`` (also ``__cause__``) is the original exception."""

    kind = "PipelineError"

    def __init__(self, stage: str, error: BaseException) -> None:
        hint = getattr(error, "hint", "") or ""
        super().__init__(f"pipeline stage {stage!r} failed: {type(error).__name__}: {error}", hint)
        self.stage, self.error = stage, error
        self.exit_code = getattr(error, "exit_code", EXIT_FAILED)


class ModelParams(NamedTuple):
    """What the pipeline needs from a bundle manifest or a resolved recipe.

    Attributes:
        name: model/recipe name.
        input_name: the input tensor's name, or None for the backend's first input.
        input_hw: network input (H, W) in pixels.
        batch: the input's batch size (the pipeline runs batch 1).
        preprocess: the resolved ``preprocess`` mapping.
        postprocess: the resolved ``postprocess`` mapping.
        class_names: names indexed by class id.
    """

    name: str
    input_name: Optional[str]
    input_hw: Tuple[int, int]
    batch: int
    preprocess: Dict[str, Any]
    postprocess: Dict[str, Any]
    class_names: List[str]


def model_params(spec: Any) -> ModelParams:
    """Normalise a :class:`~edgeagent.manifest.Manifest`, a manifest dict, or a resolved recipe dict.

    Raises:
        BadInput: a section or key is missing.
    """
    if isinstance(spec, ModelParams):
        return spec
    recipe: Any = getattr(spec, "recipe", None)
    if recipe is None and isinstance(spec, Mapping):
        recipe = spec.get("recipe", spec)
    try:
        shape = [int(v) for v in recipe["input"]["shape"]]
        post = dict(recipe["postprocess"])
        return ModelParams(
            str(recipe.get("name", "model")),
            recipe["input"].get("name"),
            (shape[2], shape[3]),
            shape[0],
            dict(recipe["preprocess"]),
            post,
            class_names(post.get("classes", "coco80")),
        )
    except (KeyError, TypeError, IndexError) as err:
        raise BadInput(
            f"model parameters: missing or malformed {err}",
            "pass the manifest, or a resolved recipe (Recipe.resolved())",
        ) from err


def _limit_cv_threads() -> Optional[Callable[[], None]]:
    """One OpenCV thread while inference runs on the CPU; returns the undo (None without cv2).

    The stages already run in parallel; OpenCV's worker pool inside resize/split/border then only
    adds hand-off overhead and takes cores from the inference threads (measured: end-to-end FPS
    up on 2 cores, docs/benchmarks.md). GPU engines leave the CPU to the stages: untouched.
    """
    try:
        import cv2
    except ImportError:
        return None
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return lambda: cv2.setNumThreads(before)


class _Work:
    """One frame on its way through the stages."""

    __slots__ = ("frame", "tensor", "transform", "outputs", "detections", "ms")

    def __init__(self, frame: Frame, capture_ms: float) -> None:
        self.frame = frame
        self.tensor: Optional[np.ndarray] = None
        self.transform: Optional[Transform] = None
        self.outputs: Dict[str, np.ndarray] = {}
        self.detections: Optional[Detections] = None
        self.ms: Dict[str, float] = {"capture": capture_ms}


_END = object()  # end of stream marker, passed down the chain
StatsCallback = Callable[[Dict[str, Any]], None]


class Pipeline:
    """Run a model over a source into sinks, with the stages overlapped in threads.

    Args:
        source: an open :class:`~edgeagent.capture.Source` (``source.live`` selects drop-oldest).
        backend: a backend (activated by :meth:`run` when it is not active yet).
        params: a :class:`ModelParams`, manifest or resolved recipe (see :func:`model_params`).
        sinks: where frames go (may be empty: inference and decode still run).
        queue_size: frames each queue holds (>= 1). Default: 1 for a live source (each slot before
            the slowest stage adds one frame period of latency and no throughput), 2 for files.
        on_stats: called from the sink thread about every ``stats_interval`` seconds, and once at
            the end, with a JSON-able progress dict (see :meth:`PipelineStats.progress`).
        stats_interval: seconds between ``on_stats`` calls.
        draw: annotate frames for image sinks (boxes, labels, landmarks, the stats panel).

    Raises:
        BadInput: a batched input (the pipeline runs batch 1) or a bad queue size.
    """

    def __init__(
        self,
        source: Source,
        backend: Backend,
        params: Any,
        sinks: Sequence[Sink] = (),
        *,
        queue_size: Optional[int] = None,
        on_stats: Optional[StatsCallback] = None,
        stats_interval: float = 1.0,
        draw: bool = True,
    ) -> None:
        self.params = model_params(params)
        if self.params.batch != 1:
            raise BadInput(
                f"{self.params.name}: input batch {self.params.batch}; camera inference runs batch 1",
                "export the model with batch 1 (input.shape: [1, C, H, W]) for run/bench",
            )
        if queue_size is None:
            queue_size = 1 if source.live else 2
        if queue_size < 1:
            raise BadInput(f"queue_size must be >= 1, got {queue_size}")
        self.source, self.backend, self.sinks = source, backend, list(sinks)
        self.queue_size, self.on_stats, self.stats_interval = queue_size, on_stats, stats_interval
        self._draw = draw and any(s.annotated for s in self.sinks)
        self._stop = threading.Event()
        self._error: Optional[Tuple[str, BaseException]] = None
        self._reason = "end"
        self._limits: Tuple[Optional[int], Optional[float]] = (None, None)
        self._gate: Optional[threading.Semaphore] = None
        # Tensors alive at once: one being made, `queue_size` waiting, one in inference (it is
        # dropped right after); one more slot so a buffer is never rewritten while still read.
        self._preprocessor = Preprocessor(self.params.input_hw, self.params.preprocess, queue_size + 3)
        self.stats = PipelineStats()

    # ------------------------------------------------------------------ control

    def stop(self, reason: str = "stopped") -> None:
        """End the run early from any thread (frames in flight are abandoned)."""
        if not self._stop.is_set():
            self._reason = reason
        self._stop.set()
        self.source.stop()

    def _fail(self, stage: str, err: BaseException) -> None:
        if self._error is None:
            self._error = (stage, err)
        self.stop("error")

    def run(self, *, max_frames: Optional[int] = None, duration: Optional[float] = None) -> PipelineStats:
        """Process frames until the source ends, ``max_frames`` are read, or ``duration`` seconds pass.

        Returns:
            The :class:`PipelineStats` (also at ``self.stats``); ``stop_reason`` says why it ended.

        Raises:
            PipelineError: a stage raised (the stage is named; the original is the cause).
        """
        self.backend.activate()
        input_name = self._check_backend()
        self._limits = (max_frames, duration)
        self._stop.clear()
        self._error, self._reason, self.stats = None, "end", PipelineStats()
        info = StreamInfo(self.params.class_names, self.source.fps, self.source.uri)
        for sink in self.sinks:
            sink.start(info)
        staged: List[Tuple[str, Callable[[_Work], None]]] = [
            ("preprocess", self._preprocess),
            ("infer", lambda w: self._infer(w, input_name)),
            ("postprocess", self._postprocess),
            ("sink", self._sink),
        ]
        if not self.source.live:
            # A file drops nothing, so pre-processing right after decoding wastes no work: the
            # capture thread does it while the frame is still in cache, saving a thread hand-off.
            staged = staged[1:]
        queues: List[queue.Queue[Any]] = [queue.Queue(self.queue_size) for _ in staged]
        # Live: preprocess takes a frame only when the queue in front of inference has room, so the
        # frame it takes is the newest one (not one that then waits behind a full queue).
        self._gate = threading.Semaphore(self.queue_size) if self.source.live else None
        threads = [
            threading.Thread(target=self._capture_loop, args=(queues[0],), name="capture", daemon=True)
        ]
        for i, (stage, fn) in enumerate(staged):
            q_out = queues[i + 1] if i + 1 < len(queues) else None
            threads.append(
                threading.Thread(
                    target=self._stage_loop, args=(stage, fn, queues[i], q_out), name=stage, daemon=True
                )
            )
        restore_cv_threads = _limit_cv_threads() if self.backend.runs_on_cpu else None
        self.stats.start()
        for thread in threads:
            thread.start()
        try:
            while threads[-1].is_alive():
                threads[-1].join(0.1)
        except KeyboardInterrupt:
            self.stop("interrupted")
        finally:
            self._finish(threads)
            if restore_cv_threads is not None:
                restore_cv_threads()
        if self._error is not None:
            stage, err = self._error
            raise PipelineError(stage, err) from err
        return self.stats

    def _check_backend(self) -> str:
        names = [spec.name for spec in self.backend.inputs]
        name = self.params.input_name or (names[0] if names else "")
        if name not in names:
            raise BadInput(f"{self.params.name}: the model has no input {name!r} (inputs: {names})")
        return name

    def _finish(self, threads: List[threading.Thread]) -> None:
        self._stop.set()
        self.source.stop()
        for thread in threads:
            thread.join(timeout=5.0)
            if thread.is_alive():
                log.warning("pipeline thread %s did not stop within 5 s (blocked in a read?)", thread.name)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:  # one bad sink must not hide the others' files
                log.warning("closing sink %s: %s", sink.uri, err)
        self.stats.finish(self._reason)
        if self.on_stats is not None:
            self.on_stats(self.stats.progress(final=True))

    # ------------------------------------------------------------------ queues

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        """Blocking put that gives up when the pipeline stops; False when stopped."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _put_latest(self, q: queue.Queue[Any], item: Any) -> None:
        """Non-blocking put that drops the oldest queued frame when the queue is full (live sources)."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.stats.dropped += 1
                except queue.Empty:
                    pass

    def _acquire(self, gate: threading.Semaphore) -> bool:
        while not self._stop.is_set():
            if gate.acquire(timeout=0.1):
                return True
        return False

    def _get(self, q: queue.Queue[Any]) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    # ------------------------------------------------------------------ stages

    def _capture_loop(self, q_out: queue.Queue[Any]) -> None:
        max_frames, duration = self._limits
        frames = iter(self.source)
        stage = "capture"
        try:
            while not self._stop.is_set():
                if max_frames is not None and self.stats.frames_in >= max_frames:
                    self._reason = "max_frames"
                    break
                if duration is not None and time.monotonic() - self.stats.t_start >= duration:
                    self._reason = "duration"
                    break
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                work = _Work(frame, (time.perf_counter() - t0) * 1000.0)
                self.stats.frames_in += 1
                if self.source.live:
                    self._put_latest(q_out, work)
                    continue
                stage = "preprocess"
                t0 = time.perf_counter()
                self._preprocess(work)
                work.ms[stage] = (time.perf_counter() - t0) * 1000.0
                stage = "capture"
                if not self._put(q_out, work):
                    break
            self._put(q_out, _END)
        except BaseException as err:
            self._fail(stage, err)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # runs the source generator's cleanup (releases the capture) in this thread

    def _stage_loop(
        self,
        stage: str,
        fn: Callable[[_Work], None],
        q_in: queue.Queue[Any],
        q_out: Optional[queue.Queue[Any]],
    ) -> None:
        gate = self._gate
        try:
            while True:
                if gate is not None and stage == "preprocess" and not self._acquire(gate):
                    return  # stopped
                item = self._get(q_in)
                if gate is not None and stage == "infer":
                    gate.release()  # a slot before inference is free: preprocess may take a frame
                if item is None:
                    return  # stopped
                if item is _END:
                    if q_out is not None:
                        self._put(q_out, _END)
                    return
                t0 = time.perf_counter()
                fn(item)
                item.ms[stage] = (time.perf_counter() - t0) * 1000.0
                if stage == "sink":
                    self._record(item)
                elif q_out is not None and not self._put(q_out, item):
                    return
        except StopStream as stop:
            log.info("%s", stop)
            self.stop("stopped")
        except BaseException as err:
            self._fail(stage, err)

    def _preprocess(self, work: _Work) -> None:
        tensor, work.transform = self._preprocessor(work.frame.image_bgr)
        work.tensor = tensor[None]  # a view: (1, C, H, W), no copy

    def _infer(self, work: _Work, input_name: str) -> None:
        assert work.tensor is not None  # set by the preprocess stage
        work.outputs = self.backend.infer({input_name: work.tensor})
        work.tensor = None  # free the input early

    def _postprocess(self, work: _Work) -> None:
        one = {name: value[0] for name, value in work.outputs.items()}
        work.detections = postprocess(one, self.params.input_hw, self.params.postprocess, work.transform)
        work.outputs = {}

    def _sink(self, work: _Work) -> None:
        dets = work.detections if work.detections is not None else Detections.empty()
        frame_stats = self.stats.frame_stats(work.frame, work.ms, len(dets))
        if self._draw:
            image = draw_detections(work.frame.image_bgr, dets, self.params.class_names, inplace=True)
            draw_stats(image, frame_stats["fps"], work.ms)
        for sink in self.sinks:
            sink.write(work.frame, dets, frame_stats)

    def _record(self, work: _Work) -> None:
        self.stats.add(work.frame, work.ms)
        if self.on_stats is not None and self.stats.progress_due(self.stats_interval):
            self.on_stats(self.stats.progress())
