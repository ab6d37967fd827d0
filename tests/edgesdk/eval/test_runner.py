"""End-to-end evaluation with real models on a few real labelled images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgesdk.errors import DatasetError, ModelFormatError
from edgesdk.eval.runner import evaluate
from edgesdk.recipe import load_recipe, parse_recipe


def test_yolox_nano_on_coco(models_dir: Path, data_dir: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = evaluate(
        load_recipe("yolox-nano"),
        data_dir / "coco_val2017_first128",
        model_dir=models_dir,
        limit=8,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert result.images == 8 and calls == [(i, 8) for i in range(1, 9)]
    assert result.map50 > 0.2 and 0 < result.map50_95 < result.map50
    assert result.protocol["score_threshold"] == 0.001 and result.protocol["max_detections"] == 300
    assert result.protocol["iou_threshold"] == 0.45 and not result.protocol["single_class"]
    assert result.images_per_s > 0 and result.num_detections > 0
    assert "person" in result.ap50_per_class
    assert list(result.to_json())[:3] == ["map50", "map50_95", "images"]


def test_yunet_on_widerface(models_dir: Path, data_dir: Path) -> None:
    result = evaluate(
        load_recipe("yunet"), data_dir / "widerface_val200_416", model_dir=models_dir, limit=8, min_size=12
    )
    assert result.images == 8 and result.protocol["single_class"] and result.protocol["aspect_restored"]
    assert list(result.ap50_per_class) == ["face"]
    assert result.map50 > 0.5
    assert result.num_ignored > 0 and any("iscrowd" in note for note in result.notes)


def test_more_label_classes_than_the_model(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("85 0.5 0.5 0.5 0.5\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="86 classes but yolox-nano predicts 80"):
        evaluate(load_recipe("yolox-nano"), tmp_path)


def test_model_that_onnxruntime_cannot_load(models_dir: Path, data_dir: Path) -> None:
    # YuNet's dynamic export fixed at UltraFace's 240x320 input: its FPN adds no longer line up
    with pytest.raises(ModelFormatError, match="onnxruntime cannot load"):
        evaluate(
            load_recipe("ultraface-rfb320"),
            data_dir / "widerface_val200_416",
            model_dir=models_dir,
            model=models_dir / "yunet_n" / "yunet_n_dynamic.onnx",
            limit=1,
        )


def test_outputs_that_do_not_fit_the_decoder(models_dir: Path, data_dir: Path) -> None:
    data = load_recipe("yolox-nano").resolved()
    data["postprocess"] = {"decoder": "yolov3", "anchors": [[[10, 14], [23, 27], [37, 58]]]}
    with pytest.raises(ModelFormatError, match="decoding yolox-nano's outputs"):
        evaluate(parse_recipe(data), data_dir / "coco_val2017_first128", model_dir=models_dir, limit=1)
