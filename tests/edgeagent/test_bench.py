"""bench(): engine alone, then the pipeline on a real video; the report's numbers are consistent."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest

from edgeagent.backends.base import Backend
from edgeagent.backends.ort import OrtBackend
from edgeagent.bench import bench, fixed_input, histogram, time_inference
from edgeagent.events import BadInput
from edgeagent.pipeline import STAGES
from edgeagent.sources import open_source
from edgeagent.telemetry import TelemetrySampler
from edgesdk.recipe import load_recipe

STATS = ("min", "mean", "p50", "p90", "p95", "p99", "max")


@pytest.fixture(scope="module")
def recipe() -> Dict[str, Any]:
    return load_recipe("retinaface-mnet").resolved()


@pytest.fixture(scope="module")
def backend(models_dir: Path, recipe: Dict[str, Any]) -> Iterator[Backend]:
    with OrtBackend(str(models_dir / recipe["model"]["path"])) as b:
        yield b


@pytest.fixture(scope="module")
def gif(data_dir: Path) -> str:
    return str(data_dir / "videos" / "head-pose-face-detection-female.gif")  # 23 frames


@pytest.fixture(scope="module")
def report(backend: Backend, recipe: Dict[str, Any], gif: str) -> Dict[str, Any]:
    return bench(backend, recipe, open_source(gif), warmup=2, infer_iterations=20, versions={"agent": "x"})


def test_whole_file_frames_are_counted(report: Dict[str, Any]) -> None:
    assert (report["frames"], report["frames_in"], report["dropped"]) == (23, 23, 0)
    assert report["stop_reason"] == "end" and not report["source_live"]
    assert report["settings"]["infer_iterations"] == 20


def test_latency_sections_are_complete_and_ordered(report: Dict[str, Any]) -> None:
    assert set(report["latency_ms"]) == set(STAGES) | {"e2e", "infer_only"}
    for name, stats in report["latency_ms"].items():
        values = [stats[k] for k in STATS]
        assert all(v is not None and v >= 0 for v in values), name
        assert values[0] <= min(values[1:]) and values[-1] >= max(values[:-1]), name
        assert stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"], name
        assert stats["count"] == (20 if name == "infer_only" else 23)
        assert sum(report["latency_hist"][name]["counts"]) == stats["count"]


def test_throughput_is_consistent(report: Dict[str, Any]) -> None:
    assert report["infer_fps"] > 0 and report["e2e_fps"] > 0
    assert report["e2e_over_infer"] == pytest.approx(report["e2e_fps"] / report["infer_fps"])
    # one engine runs frames one after another: the pipeline cannot beat its fastest inference
    assert report["e2e_fps"] <= 1000.0 / report["latency_ms"]["infer"]["min"] * 1.01
    assert report["e2e_fps"] == pytest.approx(report["frames"] / report["wall_s"]["e2e"])
    assert report["infer_fps"] == pytest.approx(20 / report["wall_s"]["infer_only"])
    series = report["fps_over_time"]
    assert len(series["t_s"]) == len(series["fps"]) >= 1


def test_no_telemetry_means_null_power(report: Dict[str, Any]) -> None:
    power = report["power"]
    assert power["available"] is False
    assert power["energy_per_inference_mj"] is None and power["energy_per_frame_mj"] is None
    assert report["temperatures"] == {} and report["clocks"]["gpu_freq_mhz"] is None


def test_background_cpu_share_is_reported(report: Dict[str, Any]) -> None:
    background = report["background_cpu"]
    assert background is not None  # Linux: /proc/stat
    assert 0.0 <= background["share"] <= 1.0 and background["capacity_s"] > 0


def test_report_is_json_and_carries_versions(report: Dict[str, Any]) -> None:
    again = json.loads(json.dumps(report))
    assert again["versions"] == {"agent": "x"} and again["model"] == "retinaface-mnet"
    assert again["backend"] == "ort" and again["input_hw"] == [640, 640]


def test_frames_limit(backend: Backend, recipe: Dict[str, Any], gif: str) -> None:
    out = bench(backend, recipe, open_source(gif), warmup=0, frames=5)
    assert out["frames"] == 5 and out["stop_reason"] == "max_frames"
    assert out["latency_ms"]["infer_only"]["count"] == 5


def test_live_source_needs_a_limit(backend: Backend, recipe: Dict[str, Any], gif: str) -> None:
    with pytest.raises(BadInput, match="frames or duration"):
        bench(backend, recipe, open_source(gif, live=True))


def test_energy_from_power_telemetry(
    backend: Backend, recipe: Dict[str, Any], gif: str, data_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # A stand-in tegrastats replaying a recorded JetPack 6 line (VDD_IN 17946 mW): not a Jetson here.
    line = data_dir / "jetson_samples/tegrastats/orin_nano_8gb_jp6.txt"
    script = tmp_path / "tegrastats"
    script.write_text(f'#!/bin/sh\nwhile true; do cat "{line}"; echo; sleep 0.02; done\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    out = bench(backend, recipe, open_source(gif), warmup=1, frames=10, telemetry=TelemetrySampler(0.02))
    power = out["power"]
    assert power["available"] and power["total_source"] == "VDD_IN"
    assert power["phase_mean_mw"]["infer"] == 17946.0
    assert power["energy_per_inference_mj"] == pytest.approx(17946.0 / out["infer_fps"])
    assert power["energy_per_frame_mj"] == pytest.approx(17946.0 / out["e2e_fps"])
    assert out["temperatures"]["gpu"] == {"mean": 63.5, "max": 63.5}
    assert out["clocks"]["gpu_freq_mhz"]["mean"] == 713.0


def test_time_inference_and_histogram(backend: Backend, recipe: Dict[str, Any]) -> None:
    feed = fixed_input(backend, recipe)
    assert feed["input0"].shape == (1, 3, 640, 640)
    assert np.array_equal(feed["input0"], fixed_input(backend, recipe)["input0"])  # same seed, same input
    times, wall = time_inference(backend, feed, iterations=3)
    assert times.shape == (3,) and wall >= times.sum() / 1000.0
    times, wall = time_inference(backend, feed, duration=0.2)
    assert wall >= 0.2 and times.size >= 1
    hist = histogram([1.0, 2.0, 2.0, 3.0], bins=2)
    assert hist == {"edges": [1.0, 2.0, 3.0], "counts": [1, 3]}
    assert histogram([]) == {"edges": [], "counts": []}
