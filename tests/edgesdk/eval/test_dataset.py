"""YOLO-format dataset loading on small real folders written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgesdk.errors import ArtifactNotFound, DatasetError
from edgesdk.eval.dataset import load_dataset, to_coco_gt


def _image(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def _label(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture()
def yolo_dir(tmp_path: Path) -> Path:
    """images/val/{a,b,c}.jpg (64x48); labels for a (2 boxes) and b (empty); c has no label file."""
    for stem in "abc":
        _image(tmp_path / "images" / "val" / f"{stem}.jpg")
    _label(tmp_path / "labels" / "val" / "a.txt", "0 0.5 0.5 0.5 0.5\n2 0.25 0.25 0.125 0.25\n")
    _label(tmp_path / "labels" / "val" / "b.txt", "")
    (tmp_path / "data.yaml").write_text("names:\n  0: cat\n  1: dog\n  2: cow\n", encoding="utf-8")
    return tmp_path


def test_loads_boxes_in_pixels(yolo_dir: Path) -> None:
    ds = load_dataset(yolo_dir)
    assert [r.path.name for r in ds.images] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [r.image_id for r in ds.images] == [1, 2, 3]
    a = ds.images[0]
    assert (a.width, a.height) == (64, 48)
    np.testing.assert_allclose(a.boxes, [[16, 12, 48, 36], [12, 6, 20, 18]])
    assert a.class_ids.tolist() == [0, 2]
    assert ds.names == ("cat", "dog", "cow")
    assert ds.missing_labels == 1 and len(ds.images[2].boxes) == 0
    assert ds.num_boxes == 2 and ds.num_ignored == 0


def test_to_coco_gt(yolo_dir: Path) -> None:
    gt = to_coco_gt(load_dataset(yolo_dir))
    assert [img["id"] for img in gt["images"]] == [1, 2, 3]  # images without boxes still count
    assert gt["categories"][2] == {"id": 3, "name": "cow"}
    second = gt["annotations"][1]
    assert second["category_id"] == 3 and second["iscrowd"] == 0
    assert second["bbox"] == pytest.approx([12, 6, 8, 12]) and second["area"] == pytest.approx(96)


def test_single_class_and_min_size(yolo_dir: Path) -> None:
    ds = load_dataset(yolo_dir, single_class=True, min_size=10)
    assert ds.names == ("object",)
    assert ds.images[0].class_ids.tolist() == [0, 0]
    assert ds.images[0].ignore.tolist() == [False, True]  # the 8x12 box is below 10 px
    assert [a["iscrowd"] for a in to_coco_gt(ds)["annotations"]] == [0, 1]


def test_limit(yolo_dir: Path) -> None:
    assert len(load_dataset(yolo_dir, limit=2).images) == 2


def test_flat_folder_with_labels_beside(tmp_path: Path) -> None:
    _image(tmp_path / "x.png", 100, 50)
    _label(tmp_path / "x.txt", "1 0.5 0.5 1.0 1.0\n")
    ds = load_dataset(tmp_path)
    np.testing.assert_allclose(ds.images[0].boxes, [[0, 0, 100, 50]])
    assert ds.names == ("0", "1")  # no data.yaml: ids up to the largest seen


def test_aspect_restored_from_annotations(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "f.jpg", 416, 416)
    _label(tmp_path / "labels" / "f.txt", "0 0.5 0.5 0.5 0.5\n")
    ann = {"images": [{"file": "images/f.jpg", "original_width": 1024, "original_height": 683}]}
    (tmp_path / "annotations.json").write_text(json.dumps(ann), encoding="utf-8")
    ds = load_dataset(tmp_path, single_class=True)
    record = ds.images[0]
    assert ds.aspect_restored and record.resize_to == (416, 277)  # round(416 * 683 / 1024) = 277
    assert (record.width, record.height) == (416, 277)
    np.testing.assert_allclose(record.boxes, [[104, 69.25, 312, 207.75]])


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound):
        load_dataset(tmp_path / "nope")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(tmp_path)


def test_unreadable_image_is_an_error(yolo_dir: Path) -> None:
    (yolo_dir / "images" / "val" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="broken.jpg"):
        load_dataset(yolo_dir)


def test_no_labels_at_all(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg")
    with pytest.raises(DatasetError, match="no label files"):
        load_dataset(tmp_path)


def test_labels_without_boxes(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg")
    _label(tmp_path / "labels" / "a.txt", "\n")
    with pytest.raises(DatasetError, match="no boxes"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("0 0.5 0.5 0.5", "5 fields"),
        ("x 0.5 0.5 0.5 0.5", "bad label line"),
        ("3 0.5 0.5 0.5 0.5", "outside 0..2"),
        ("0 0.5 0.5 0 0.5", "positive"),
    ],
)
def test_malformed_label_names_file_and_line(yolo_dir: Path, line: str, match: str) -> None:
    _label(yolo_dir / "labels" / "val" / "b.txt", f"0 0.5 0.5 0.1 0.1\n{line}\n")
    with pytest.raises(DatasetError, match=match) as info:
        load_dataset(yolo_dir)
    assert "b.txt:2" in str(info.value)


def test_shared_coco_subset(data_dir: Path) -> None:
    ds = load_dataset(data_dir / "coco_val2017_first128")
    assert len(ds.images) == 64 and ds.num_boxes == 461 and len(ds.names) == 80


def test_shared_widerface_subset(data_dir: Path) -> None:
    ds = load_dataset(data_dir / "widerface_val200_416", single_class=True, min_size=12)
    assert len(ds.images) == 150 and ds.aspect_restored and ds.names == ("face",)
    assert all(r.width == 416 and r.resize_to is not None for r in ds.images)
    # independent count from the official GT in original pixels: faces >= 12 px in both sides at width 416
    meta = json.loads((data_dir / "widerface_val200_416" / "annotations.json").read_text(encoding="utf-8"))
    expected = sum(
        1
        for image in meta["images"]
        for face in image["faces"]
        if min(face["bbox_xywh_original"][2:]) * 416 / image["original_width"] >= 12
    )
    assert ds.num_boxes - ds.num_ignored == expected
