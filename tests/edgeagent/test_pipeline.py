"""The overlapped pipeline on real videos and real ONNX models (onnxruntime)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping

import cv2
import numpy as np
import pytest

from edgeagent.backends.base import Backend
from edgeagent.backends.ort import OrtBackend
from edgeagent.capture import Frame, Source
from edgeagent.events import BadInput
from edgeagent.manifest import Manifest
from edgeagent.pipeline import STAGES, ModelParams, Pipeline, PipelineError, model_params
from edgeagent.sinks import Sink, StopStream, open_sink
from edgeagent.sources import open_source
from edgeagent.vision.draw import palette
from edgeagent.vision.types import Detections
from edgesdk.recipe import load_recipe


@pytest.fixture(scope="module")
def face_recipe() -> Dict[str, Any]:
    return load_recipe("retinaface-mnet").resolved()


@pytest.fixture(scope="module")
def face_backend(models_dir: Path, face_recipe: Dict[str, Any]) -> Iterator[Backend]:
    with OrtBackend(str(models_dir / face_recipe["model"]["path"])) as backend:
        yield backend


@pytest.fixture(scope="module")
def walking(data_dir: Path) -> str:
    return str(data_dir / "videos" / "face-demographics-walking.gif")  # 35 frames, 480x270


class Recorder(Sink):
    """Keeps what it is given (and can raise or stop on a given frame)."""

    def __init__(
        self, fail_at: int = -1, stop_at: int = -1, delay_s: float = 0.0, annotated: bool = False
    ) -> None:
        super().__init__("recorder://")
        self.annotated = annotated
        self.fail_at, self.stop_at, self.delay_s = fail_at, stop_at, delay_s
        self.frames: List[Frame] = []
        self.dets: List[Detections] = []
        self.stats: List[Mapping[str, Any]] = []
        self.closed = False

    def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
        if frame.index == self.fail_at:
            raise ValueError("disk full")
        if frame.index == self.stop_at:
            raise StopStream("viewer closed the window")
        time.sleep(self.delay_s)
        self.frames.append(frame)
        self.dets.append(detections)
        self.stats.append(dict(stats))

    def close(self) -> None:
        self.closed = True


def test_whole_file_every_frame_every_stage(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    sink = Recorder()
    stats = Pipeline(open_source(walking), face_backend, face_recipe, [sink]).run()
    assert (stats.frames_in, stats.frames_out, stats.dropped, stats.stop_reason) == (35, 35, 0, "end")
    assert [f.index for f in sink.frames] == list(range(35))  # in order, none lost
    for name in STAGES + ("e2e",):
        assert stats.samples[name].count == 35
    e2e = stats.samples["e2e"].values()
    parts = sum(stats.samples[name].values() for name in STAGES[1:])
    assert (e2e >= parts - 1e-6).all()  # end-to-end covers at least the stages after capture
    assert sink.closed
    faces = [d for d in sink.dets if len(d)]
    assert len(faces) >= 7  # README: RetinaFace finds a face in every 5th frame of this GIF
    assert all(d.landmarks is not None and d.landmarks.shape[1:] == (5, 2) for d in faces)
    assert all((d.boxes[:, 2] <= 480).all() and (d.boxes[:, 3] <= 270).all() for d in faces)  # source pixels
    assert sink.stats[-1]["frames_out"] == 34 and set(sink.stats[-1]["stage_ms"]) == set(STAGES) - {"sink"}


def test_image_sinks_get_drawn_frames_and_jsonl_gets_names(
    face_backend: Backend, face_recipe: dict, walking: str, tmp_path: Path
) -> None:
    sinks = [open_sink(str(tmp_path / "frames") + "/", ext="png"), open_sink(str(tmp_path / "dets.jsonl"))]
    stats = Pipeline(open_source(walking), face_backend, face_recipe, sinks).run(max_frames=6)
    assert stats.frames_out == 6 and stats.stop_reason == "max_frames"
    lines = [json.loads(line) for line in (tmp_path / "dets.jsonl").read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(6))
    hit = next(line for line in lines if line["detections"]["boxes"])
    assert set(hit["detections"]["classes"]) == {"face"}
    x1, y1, x2, y2 = (int(round(v)) for v in hit["detections"]["boxes"][0])
    drawn = cv2.imread(str(tmp_path / "frames" / f"{hit['index']:06d}.png"))
    assert drawn is not None
    edge = drawn[(y1 + y2) // 2, max(0, x1 - 1) : x1 + 2]
    assert (edge == palette(1)[0]).all(axis=1).any()  # the box's left edge, in the class colour


def test_yolov5n_on_an_image_folder_matches_the_reference(models_dir: Path, sample_images: dict) -> None:
    recipe = load_recipe("yolov5n").resolved()
    sink = Recorder()
    with OrtBackend(str(models_dir / recipe["model"]["path"])) as backend:
        Pipeline(open_source(str(sample_images["bus"].parent)), backend, recipe, [sink]).run()
    assert len(sink.dets) == 2  # bus.jpg, zidane.jpg
    bus = sink.dets[0]
    names = model_params(recipe).class_names
    assert sorted(names[i] for i in bus.class_ids.tolist()) == ["bus", "person", "person", "person"]
    # yolov5n_coco/README.md: person 0.823 at [219.3, 407.8, 349.4, 862.7] (source px)
    assert np.abs(bus.boxes[0] - np.array([219.3, 407.8, 349.4, 862.7])).max() < 2.0
    assert abs(float(bus.scores[0]) - 0.823) < 0.01


def test_live_source_drops_the_oldest_frames(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    # A 35-frame GIF read as a 200 fps "camera": far faster than the model, so frames must drop.
    sink = Recorder(delay_s=0.02)
    source = open_source(walking, fps=200, live=True, loop=1)
    pipeline = Pipeline(source, face_backend, face_recipe, [sink])
    assert pipeline.queue_size == 1  # live default: least latency
    stats = pipeline.run()
    assert stats.dropped > 0
    assert stats.frames_in == stats.frames_out + stats.dropped == 70
    indices = [f.index for f in sink.frames]
    assert indices == sorted(indices) and indices[-1] == 69  # the newest frame always gets through


def test_files_drop_nothing_even_with_a_slow_sink(
    face_backend: Backend, face_recipe: dict, walking: str
) -> None:
    sink = Recorder(delay_s=0.03)
    stats = Pipeline(open_source(walking), face_backend, face_recipe, [sink], queue_size=1).run(max_frames=12)
    assert (stats.frames_out, stats.dropped) == (12, 0)


def test_frames_in_flight_stay_bounded(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    in_flight: List[int] = []

    class Probe(Recorder):
        def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
            in_flight.append(pipeline.stats.frames_in - pipeline.stats.frames_out)
            time.sleep(0.01)

    pipeline = Pipeline(open_source(walking), face_backend, face_recipe, [Probe()])
    assert pipeline.queue_size == 2  # file default
    pipeline.run()
    # 4 queues of 2, one frame inside each of 5 stages: never more, however long the file
    assert max(in_flight) <= 4 * 2 + 5


def test_duration_stops_the_run(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    source = open_source(walking, fps=20, loop=-1)
    start = time.monotonic()
    stats = Pipeline(source, face_backend, face_recipe).run(duration=0.6)
    assert stats.stop_reason == "duration"
    assert time.monotonic() - start < 3.0
    assert 5 <= stats.frames_out <= 20


def test_a_failing_stage_is_named_and_everything_stops(
    face_backend: Backend, face_recipe: dict, walking: str
) -> None:
    sink = Recorder(fail_at=3)
    pipeline = Pipeline(open_source(walking), face_backend, face_recipe, [sink])
    with pytest.raises(PipelineError, match="stage 'sink' failed: ValueError: disk full") as info:
        pipeline.run()
    assert info.value.stage == "sink" and isinstance(info.value.__cause__, ValueError)
    assert sink.closed and len(sink.frames) == 3
    assert not [t for t in threading.enumerate() if t.name in STAGES and t.is_alive()]


def test_a_decoder_error_names_postprocess(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    post = {k: v for k, v in face_recipe["postprocess"].items() if k != "iou_threshold"}
    broken = dict(face_recipe, postprocess=post)
    with pytest.raises(PipelineError) as info:
        Pipeline(open_source(walking), face_backend, broken).run()
    assert info.value.stage == "postprocess"


class ExplodingSource(Source):
    def __init__(self) -> None:
        super().__init__("exploding://", live=False)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, np.zeros((64, 64, 3), np.uint8), time.monotonic())
        raise OSError("camera unplugged")


def test_a_capture_error_names_capture(face_backend: Backend, face_recipe: dict) -> None:
    with pytest.raises(PipelineError, match="'capture'.*camera unplugged"):
        Pipeline(ExplodingSource(), face_backend, face_recipe).run()


@pytest.mark.parametrize("live", [False, True])
def test_a_preprocess_error_names_preprocess_in_both_thread_layouts(
    face_backend: Backend, face_recipe: dict, live: bool
) -> None:
    class FloatSource(Source):  # float frames: pre-processing refuses them (uint8 only)
        def __iter__(self) -> Iterator[Frame]:
            while not self.stopped:
                yield Frame(0, np.zeros((64, 64, 3), np.float32), time.monotonic())

    with pytest.raises(PipelineError) as info:
        Pipeline(FloatSource("float://", live=live), face_backend, face_recipe).run(max_frames=5)
    assert info.value.stage == "preprocess" and "uint8" in str(info.value)
    assert not [t for t in threading.enumerate() if t.name in STAGES and t.is_alive()]


def test_a_sink_can_end_the_run_cleanly(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    stats = Pipeline(open_source(walking), face_backend, face_recipe, [Recorder(stop_at=5)]).run()
    assert stats.stop_reason == "stopped" and 5 <= stats.frames_in <= 35


def test_ctrl_c_shuts_down_cleanly(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    class CtrlC(Recorder):
        """Presses Ctrl-C (SIGINT to this process) once frames flow, so run() is surely waiting."""

        def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
            super().write(frame, detections, stats)
            if frame.index == 3:
                os.kill(os.getpid(), signal.SIGINT)

    source = open_source(walking, fps=25, loop=-1)
    pipeline = Pipeline(source, face_backend, face_recipe, [CtrlC()])
    start = time.monotonic()
    stats = pipeline.run(duration=20)
    assert stats.stop_reason == "interrupted"
    assert time.monotonic() - start < 5.0
    assert not [t for t in threading.enumerate() if t.name in STAGES and t.is_alive()]


def test_progress_callback(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    seen: List[Dict[str, Any]] = []
    Pipeline(open_source(walking), face_backend, face_recipe, on_stats=seen.append, stats_interval=0.0).run()
    assert seen[-1]["final"] and seen[-1]["stop_reason"] == "end" and seen[-1]["frames_out"] == 35
    assert any(s["stage_ms"].get("infer", 0) > 0 for s in seen[:-1])
    json.dumps(seen)


def test_model_params_from_manifest_manifest_dict_and_recipe(face_recipe: dict, tmp_path: Path) -> None:
    data = {"bundle_format": 1, "recipe": face_recipe, "files": []}
    for spec in (face_recipe, data, Manifest(data, str(tmp_path))):
        params = model_params(spec)
        assert isinstance(params, ModelParams)
        assert (params.name, params.input_name, params.input_hw, params.batch) == (
            "retinaface-mnet", "input0", (640, 640), 1
        )  # fmt: skip
        assert params.class_names == ["face"] and params.postprocess["decoder"] == "retinaface"
    with pytest.raises(BadInput, match="missing"):
        model_params({"name": "x"})


def test_batched_models_are_refused(face_backend: Backend, face_recipe: dict, walking: str) -> None:
    batched = dict(face_recipe, input=dict(face_recipe["input"], shape=[4, 3, 640, 640]))
    with pytest.raises(BadInput, match="batch 4"):
        Pipeline(open_source(walking), face_backend, batched)


def test_cpu_inference_runs_opencv_single_threaded_and_restores_it(
    face_backend: Backend, face_recipe: dict, walking: str
) -> None:
    seen: List[int] = []

    class Probe(Recorder):
        def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
            seen.append(cv2.getNumThreads())

    before = cv2.getNumThreads()
    assert face_backend.runs_on_cpu
    Pipeline(open_source(walking), face_backend, face_recipe, [Probe()]).run(max_frames=3)
    assert seen == [1, 1, 1] and cv2.getNumThreads() == before


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the RSS from /proc (Linux)")
def test_memory_stays_flat_over_a_long_run(models_dir: Path, walking: str) -> None:
    recipe = load_recipe("yunet").resolved()
    recipe["model"]["path"], recipe["input"]["shape"] = "yunet_n/yunet_n_320_320.onnx", [1, 3, 320, 320]
    rss: Dict[int, float] = {}

    class Meter(Sink):
        def write(self, frame: Frame, detections: Detections, stats: Mapping[str, Any]) -> None:
            if frame.index in (100, 399):
                rss[frame.index] = _rss_mb()

    with OrtBackend(str(models_dir / recipe["model"]["path"])) as backend:
        source = open_source(walking, loop=-1)  # the 35-frame clip, over and over: a long "file"
        stats = Pipeline(source, backend, recipe, [Meter("meter://")]).run(max_frames=400)
    assert stats.frames_out == 400 and set(rss) == {100, 399}
    # 300 more frames (each 480x270x3 = 0.4 MB decoded) leave the process the size it was:
    # a frame or a tensor kept per frame would add over 100 MB
    assert rss[399] - rss[100] < 16.0, rss
