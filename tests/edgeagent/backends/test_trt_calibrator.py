"""Calibration batches on real images with a real recipe's pre-processing; cache selection."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List

import cv2
import numpy as np
import pytest

from edgeagent.backends.base import BackendError
from edgeagent.backends.trt_calibrator import (
    CalibrationBatches,
    CalibrationDataError,
    _cache_bytes,
    make_entropy_calibrator,
)
from edgeagent.vision.preprocess import preprocess
from edgesdk.recipe import load_recipe


@pytest.fixture(scope="module")
def coco_images(data_dir: Path) -> List[Path]:
    images = sorted((data_dir / "coco128" / "images").rglob("*.jpg"))[:10]
    if len(images) < 10:
        pytest.skip("coco128 images not found")
    return images


def _params(recipe: str) -> Dict[str, Any]:
    return load_recipe(recipe).preprocess.model_dump()


def test_batches_match_per_image_preprocessing(coco_images: List[Path]) -> None:
    params = _params("yolov5n")  # letterbox, rgb, /255
    batches = CalibrationBatches(coco_images, params, (4, 3, 160, 192))
    assert batches.batch_size == 4 and batches.max_batches == 2
    out = list(batches)
    assert len(out) == 2 and batches.dropped == 2 and batches.skipped == []  # 10 = 2 x 4 + 2 dropped
    for batch in out:
        assert batch.shape == (4, 3, 160, 192) and batch.dtype == np.float32 and batch.flags.c_contiguous
    for i, path in enumerate(coco_images[:8]):
        image = cv2.imread(str(path))
        assert image is not None
        expected, _ = preprocess(image, (160, 192), params)
        np.testing.assert_array_equal(out[i // 4][i % 4], expected)
    assert 0.0 <= float(out[0].min()) and float(out[0].max()) <= 1.0
    assert len(list(batches)) == 2  # iterating again starts over


def test_mean_std_recipe_and_grey_input(coco_images: List[Path]) -> None:
    params = _params("retinaface-mnet")  # bgr, mean subtraction, scale 1
    (batch,) = list(CalibrationBatches(coco_images[:2], params, (2, 3, 96, 96)))
    assert float(batch.min()) < -50 and float(batch.max()) > 50  # raw pixels minus ~117
    (grey,) = list(CalibrationBatches(coco_images[:1], _params("yolov5n"), (1, 1, 64, 64)))
    assert grey.shape == (1, 1, 64, 64)


def test_unreadable_images_are_skipped_and_listed(coco_images: List[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(coco_images[0].read_bytes()[:200])
    paths = [broken, coco_images[0], truncated, coco_images[1], tmp_path / "missing.jpg"]
    batches = CalibrationBatches(paths, _params("yolov5n"), (2, 3, 64, 64))
    out = list(batches)
    assert len(out) == 1
    assert broken in batches.skipped and (tmp_path / "missing.jpg") in batches.skipped


def test_no_full_batch_raises(tmp_path: Path, coco_images: List[Path]) -> None:
    junk = [tmp_path / f"{i}.jpg" for i in range(3)]
    for path in junk:
        path.write_bytes(b"junk")
    with pytest.raises(CalibrationDataError, match="no full calibration batch"):
        list(CalibrationBatches(junk + coco_images[:1], _params("yolov5n"), (2, 3, 64, 64)))


@pytest.mark.parametrize(
    ("paths", "shape", "match"),
    [(1, (2, 3, 64, 64), "at least one batch of 2"), (4, (2, 3, 64), "N, C"), (4, (2, 4, 64, 64), "N, C")],
)
def test_bad_setup_raises(coco_images: List[Path], paths: int, shape: Any, match: str) -> None:
    with pytest.raises(CalibrationDataError, match=match):
        CalibrationBatches(coco_images[:paths], _params("yolov5n"), shape)


def test_missing_preprocess_key_is_reported(coco_images: List[Path]) -> None:
    params = _params("yolov5n")
    del params["mean"]
    with pytest.raises(ValueError, match="mean"):
        list(CalibrationBatches(coco_images[:2], params, (2, 3, 64, 64)))


def test_host_cache_used_only_for_matching_tensorrt(data_dir: Path, tmp_path: Path) -> None:
    real = data_dir / "jetson_samples" / "calib_cache" / "yolov5s_jetson_jp5.1_trt8502.cache"
    if not real.is_file():
        pytest.skip("no real calibration cache")
    cache = tmp_path / "calibration.cache"
    shutil.copy(real, cache)
    assert _cache_bytes(cache, "8.5.2.2") == real.read_bytes()
    assert _cache_bytes(cache, "8.6.2.3") is None  # TensorRT would ignore it: calibrate again
    assert _cache_bytes(cache, "10.3.0.30") is None
    assert _cache_bytes(tmp_path / "absent.cache", "8.5.2.2") is None
    assert _cache_bytes(None, "8.5.2.2") is None
    corrupt = tmp_path / "corrupt.cache"
    corrupt.write_bytes(b"TRT-8502-EntropyCalibration2\nx: zz\n")
    assert _cache_bytes(corrupt, "8.5.2.2") is None


def test_factory_needs_tensorrt_and_checks_shapes(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match="differs"):
        make_entropy_calibrator([], tmp_path / "c.cache", batch_size=2, input_shape=(4, 3, 64, 64))
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="TensorRT"):
            make_entropy_calibrator([], tmp_path / "c.cache", batch_size=4, input_shape=(4, 3, 64, 64))
