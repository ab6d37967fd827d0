"""Scoring detections made on a device (`edgesdk eval --detections`), against the host's own eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesdk.deploy.camera import run_on_device
from edgesdk.deploy.flow import deploy
from edgesdk.deploy.inventory import LOCAL
from edgesdk.errors import DatasetError
from edgesdk.eval import evaluate
from edgesdk.eval.device import evaluate_detections, read_detections
from edgesdk.recipe import load_recipe

IMAGES = 8


def test_device_detections_score_as_the_host_eval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path, data_dir: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "device-home"))
    (tmp_path / "device-home").mkdir()
    recipe = load_recipe("yolo-fastest")
    [report] = deploy(recipe, [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert report.ok, report.error
    coco = data_dir / "coco128"
    dets = tmp_path / "dets.jsonl"
    run_on_device(LOCAL, "yolo-fastest", tmp_path / "w", source=str(coco / "images" / "train2017"),
                  sinks=[str(dets)], frames=IMAGES, conf=0.001, max_det=300)  # fmt: skip
    assert len(read_detections(dets)) == IMAGES  # one line per image, each naming its file

    device = evaluate_detections(recipe, coco, dets, limit=IMAGES)
    host = evaluate(recipe, coco, model_dir=models_dir, limit=IMAGES)
    # the same engine, pre-processing and decoder on both sides: the same score (the jsonl rounds
    # boxes to 0.01 px and scores to 1e-4)
    assert device.map50 == pytest.approx(host.map50, abs=2e-3) and host.map50 > 0.2
    assert device.map50_95 == pytest.approx(host.map50_95, abs=2e-3)
    assert not any("lowest score" in note for note in device.notes)

    # with the recipe's run-time threshold the note says how to make it comparable
    high = tmp_path / "high.jsonl"
    run_on_device(LOCAL, "yolo-fastest", tmp_path / "w", source=str(coco / "images" / "train2017"),
                  sinks=[str(high)], frames=2)  # fmt: skip
    partial = evaluate_detections(recipe, coco, high, limit=IMAGES)
    assert any("--conf 0.001" in note for note in partial.notes)
    assert any(f"{IMAGES - 2} images have no line" in note for note in partial.notes)


def _line(**fields: object) -> str:
    return json.dumps({"index": 0, "detections": {"boxes": [], "scores": [], "class_ids": []}, **fields})


def test_bad_detection_files(tmp_path: Path, data_dir: Path) -> None:
    recipe = load_recipe("yolo-fastest")
    video = tmp_path / "video.jsonl"
    video.write_text(_line() + "\n")
    with pytest.raises(DatasetError, match="video or a camera"):
        read_detections(video)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(_line(file="a.jpg") + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"broken.jsonl:2 is not a detections line"):
        read_detections(broken)
    other = tmp_path / "other.jsonl"
    other.write_text(_line(file="not-in-coco.jpg") + "\n")
    with pytest.raises(DatasetError, match="names an image of"):
        evaluate_detections(recipe, data_dir / "coco128", other, limit=4)
    wider = load_recipe("yunet")
    with pytest.raises(DatasetError, match="annotations.json"):  # evaluated at other sizes than the files
        evaluate_detections(wider, data_dir / "widerface_val200_416", other, limit=4)
