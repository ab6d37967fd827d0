"""Host glue for TensorRT calibration caches: version codes, round trip, name checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeagent.calib_cache import read_cache
from edgesdk.errors import CalibrationError
from edgesdk.quant.cache import DEFAULT_TRT, make_cache, missing_names, read_thresholds, trt_code


@pytest.mark.parametrize(
    ("target", "code"),
    [("8.5", 8502), ("8.6", 8602), ("10.3", 100300), ("8.6.1", 8601), ("8502", 8502), ("10.3.0.26", 100300)],
)
def test_trt_codes(target: str, code: int) -> None:
    assert trt_code(target) == code


def test_default_is_jetpack5() -> None:
    assert trt_code(DEFAULT_TRT) == 8502


def test_bad_version() -> None:
    with pytest.raises(CalibrationError, match="'eight'") as err:
        trt_code("eight")
    assert "8.5" in (err.value.hint or "")


def test_round_trip_keeps_order_and_values() -> None:
    thresholds = {"images": 255.0, "/model.0/conv/Conv_output_0": 12.5, "name with spaces": 0.001}
    data = make_cache(thresholds, "10.3")
    assert data.startswith(b"TRT-100300-EntropyCalibration2\n")
    cache = read_cache(data)
    assert list(cache.scales) == list(thresholds)
    version, back = read_thresholds(data)
    assert version == 100300
    for name, value in thresholds.items():
        assert back[name] == pytest.approx(value, rel=1e-6)  # float32 scales
    assert missing_names(data, ["images", "name with spaces"]) == ["/model.0/conv/Conv_output_0"]


def test_real_tensorrt_cache_reads(data_dir: Path) -> None:
    path = data_dir / "jetson_samples" / "calib_cache" / "yolov5s_jetson_jp5.1_trt8502.cache"
    version, thresholds = read_thresholds(path)
    assert version == 8502 and thresholds["/0/model.0/act/Sigmoid_output_0"] == pytest.approx(
        2048.5 / 2048, rel=1e-6
    )
    assert make_cache(thresholds, "8.5") == path.read_bytes()


def test_bad_thresholds() -> None:
    with pytest.raises(CalibrationError, match="cannot write"):
        make_cache({"t": float("nan")})
    with pytest.raises(CalibrationError, match="cannot read"):
        read_thresholds(b"not a cache\n")
