"""Calibration-set selection on a messy folder of real images."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgesdk.errors import ArtifactNotFound, DatasetError
from edgesdk.quant.select import MIN_RECOMMENDED, describe, k_center, select_images


@pytest.fixture()
def messy(tmp_path: Path, data_dir: Path) -> dict[str, Path]:
    """8 real COCO images plus a duplicate, a truncated JPEG, junk, an empty file, a grey PNG,
    a huge PNG, a label file and a nested folder."""
    real = sorted((data_dir / "coco_val2017_first128" / "images").rglob("*.jpg"))[:8]
    root = tmp_path / "pool"
    (root / "nested").mkdir(parents=True)
    for path in real[:7]:
        shutil.copy(path, root / path.name)
    shutil.copy(real[7], root / "nested" / real[7].name)
    image = cv2.imread(str(real[0]))
    small = cv2.resize(image, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "zz_copy_of_first.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 60])
    data = real[1].read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 3])
    (root / "junk.jpg").write_bytes(b"this is not an image at all")
    (root / "empty.png").write_bytes(b"")
    cv2.imwrite(str(root / "grey.png"), cv2.cvtColor(cv2.imread(str(real[2])), cv2.COLOR_BGR2GRAY))
    huge = np.zeros((6500, 6500, 3), np.uint8)  # 42 MP: decoded at 1/2
    huge[:, :3250] = (20, 120, 220)
    cv2.imwrite(str(root / "huge.png"), huge)
    (root / "labels.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return {"root": root, "first": root / real[0].name, "copy": root / "zz_copy_of_first.jpg"}


def test_messy_folder(messy: dict[str, Path]) -> None:
    ticks: list[int] = []
    selection = select_images(messy["root"], 1000, progress=lambda d, t: ticks.append(t))
    root = messy["root"]
    assert selection.scanned == 15 and selection.other_files == 1 and ticks[-1] == 14
    reasons = {selection.relative(p): r for p, r in selection.dropped}
    assert reasons["zz_copy_of_first.jpg"] == f"duplicate of {messy['first'].name}"
    assert reasons["cut.jpg"].startswith("truncated")
    assert reasons["junk.jpg"].startswith("unreadable")
    assert reasons["empty.png"] == "empty file"
    assert selection.drop_counts() == {"duplicate": 1, "truncated": 1, "unreadable": 1, "empty": 1}
    assert selection.usable == 11 and len(selection.chosen) == 10
    assert root / "grey.png" in selection.grayscale and root / "huge.png" in selection.reduced
    assert any(p.parent.name == "nested" for p in selection.chosen)
    assert any("fewer than 500" in w for w in selection.warnings)
    assert any("only 10 usable" in w for w in selection.warnings)
    data = selection.to_json()
    assert data["count"] == 10 and "nested/" in " ".join(data["chosen"])


def test_selection_is_deterministic_and_spread(messy: dict[str, Path]) -> None:
    a = select_images(messy["root"], 4)
    b = select_images(messy["root"], 4)
    assert a.chosen == b.chosen and len(a.chosen) == 4
    assert not any("only" in w and "usable" in w for w in a.warnings)
    assert str(MIN_RECOMMENDED) in a.warnings[0]


def test_k_center_farthest_first() -> None:
    points = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [5.0]])
    assert k_center(points, 3) == [5, 4, 0]  # mean 4.83 -> 5.0, then 11, then 0
    assert sorted(k_center(points, 10)) == list(range(6))


def test_describe_shapes(sample_images: dict[str, Path]) -> None:
    feature, thumb, bits = describe(cv2.imread(str(sample_images["bus"])))
    assert feature.shape == (896,) and thumb.shape == (768,) and bits.shape == (8,)
    assert 0.0 <= thumb.min() and thumb.max() <= 1.0


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound):
        select_images(tmp_path / "missing", 10)
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jpg").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="no usable images"):
        select_images(tmp_path, 10)
    with pytest.raises(DatasetError, match=">= 1"):
        select_images(tmp_path, 0)
