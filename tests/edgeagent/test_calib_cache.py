"""The calibration-cache format, on real caches written by TensorRT 8.5, 8.6 and 10.3."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from edgeagent.calib_cache import (
    CalibCache,
    CalibCacheError,
    cache_matches,
    hex_to_scale,
    read_cache,
    scale_to_hex,
    trt_version_code,
    version_from_code,
    write_cache,
)

# file -> (version code, number of tensors, first tensor, a tensor with a known hex value)
REAL_CACHES = {
    "yolov5s_jetson_jp5.1_trt8502.cache": (8502, 313, "input", ("input", "3c010a16")),
    "yolov5s_qat2ptq_orin_dla_trt8600.cache": (
        8600,
        197,
        "images",
        ("/model.1/act/Mul_output_0", "3e870ad0"),
    ),
    "yolo11s_trt100300_x86_windows.cache": (
        100300,
        343,
        "images",
        ("/model.0/conv/Conv_output_0", "3e6c71c3"),
    ),
}


def _by_hand(hex_text: str) -> float:
    """Decode float32 bits from sign, exponent and mantissa fields (no struct)."""
    bits = int(hex_text, 16)
    sign = -1.0 if bits >> 31 else 1.0
    exponent = (bits >> 23) & 0xFF
    mantissa = bits & 0x7FFFFF
    return sign * (1.0 + mantissa / 2.0**23) * 2.0 ** (exponent - 127)


@pytest.fixture(scope="module")
def cache_dir(data_dir: Path) -> Path:
    folder = data_dir / "jetson_samples" / "calib_cache"
    if not folder.is_dir():
        pytest.skip(f"no real calibration caches at {folder}")
    return folder


@pytest.mark.parametrize("name", sorted(REAL_CACHES))
def test_real_cache_parses_and_round_trips_byte_exact(cache_dir: Path, name: str) -> None:
    version, count, first, (tensor, hex_text) = REAL_CACHES[name]
    data = (cache_dir / name).read_bytes()
    cache = read_cache(data)
    assert cache.version == version
    assert cache.algorithm == "EntropyCalibration2"
    assert len(cache.scales) == count
    assert next(iter(cache.scales)) == first
    assert cache.scales[tensor] == _by_hand(hex_text)
    assert write_cache(cache) == data
    assert read_cache(cache_dir / name) == cache  # path form reads the same


def test_known_values_decoded_by_hand(cache_dir: Path) -> None:
    cache = read_cache(cache_dir / "yolov5s_jetson_jp5.1_trt8502.cache")
    # 0x3c010a14: exponent 0x78 = 120 -> 2^-7, mantissa 0x010a14 = 68116 -> 1 + 68116/2^23.
    assert cache.scales["/0/model.0/act/Sigmoid_output_0"] == pytest.approx(
        (1 + 68116 / 2**23) / 128, rel=0, abs=0
    )
    # A sigmoid saturates at 1.0: its threshold = scale * 127 must be ~1.
    assert cache.scales["/0/model.0/act/Sigmoid_output_0"] * 127 == pytest.approx(1.0, abs=2e-3)
    # Names TensorRT made up for layers it added keep their spaces and brackets.
    assert cache.scales["(Unnamed Layer* 225) [Shuffle]_output"] == _by_hand("3c010a14")
    assert cache.scales["classes"] == _by_hand("3f1f4871")


def test_trt10_cache_keeps_parser_generated_names(cache_dir: Path) -> None:
    cache = read_cache(cache_dir / "yolo11s_trt100300_x86_windows.cache")
    generated = [n for n in cache.scales if n.startswith("ONNXTRT_")]
    assert "ONNXTRT_Broadcast_output" in generated and len(generated) >= 4
    assert all(s > 0 for s in cache.scales.values())


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("8.5.2.2", 8502),
        ("8.5.2", 8502),
        ("8.6.1.6", 8601),
        ("8.6.2.3", 8602),
        ("10.3.0.30", 100300),
        ("10.13.0.35", 101300),
        ((8, 6, 0), 8600),
        (100300, 100300),
    ],
)
def test_trt_version_code(text: object, code: int) -> None:
    assert trt_version_code(text) == code  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [8502, 8600, 8602, 100300, 101300])
def test_version_from_code_inverts(code: int) -> None:
    assert trt_version_code(version_from_code(code)) == code


@pytest.mark.parametrize("bad", ["", "eight", "8", "8.x.1", "8.10.0", "8.5.100"])
def test_trt_version_code_rejects(bad: str) -> None:
    with pytest.raises(CalibCacheError):
        trt_version_code(bad)


def test_cache_matches_exact_version_and_algorithm(cache_dir: Path) -> None:
    cache = read_cache(cache_dir / "yolov5s_jetson_jp5.1_trt8502.cache")
    assert cache_matches(cache, "8.5.2.2")
    assert not cache_matches(cache, "8.5.3.1")
    assert not cache_matches(cache, "10.3.0.30")
    assert not cache_matches(cache, "8.5.2.2", algorithm="MinMaxCalibration")


@pytest.mark.parametrize(
    "algorithm", ["EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration"]
)
def test_every_algorithm_header_round_trips(algorithm: str) -> None:
    data = f"TRT-8601-{algorithm}\nx: 3c010a14\n".encode()
    cache = read_cache(data)
    assert cache.algorithm == algorithm and cache.version == 8601
    assert write_cache(cache) == data


def test_write_from_thresholds_zero_pads_and_rounds_to_float32() -> None:
    cache = CalibCache(100300, "EntropyCalibration2", {"a": 1.0 / 127, "tiny": 1e-40, "zero": 0.0})
    data = write_cache(cache)
    lines = data.decode().splitlines()
    assert lines[0] == "TRT-100300-EntropyCalibration2"
    assert lines[1] == "a: " + struct.pack(">f", 1.0 / 127).hex() == "a: 3c010204"
    assert lines[2].split(": ")[1] == "000116c2"  # a denormal: fewer significant digits, still 8
    assert lines[3] == "zero: 00000000"
    assert read_cache(data).scales["a"] == struct.unpack(">f", struct.pack(">f", 1.0 / 127))[0]


def test_hex_helpers() -> None:
    assert scale_to_hex(hex_to_scale("3e6c71c3")) == "3e6c71c3"
    assert hex_to_scale("0") == 0.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(CalibCacheError):
            scale_to_hex(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"TRT8502-EntropyCalibration2\n", "header"),
        (b"TRT-8502-Percentile\n", "unknown algorithm"),
        (b"TRT-8502-EntropyCalibration2\nno-colon 3c010a14\n", ":2:"),
        (b"TRT-8502-EntropyCalibration2\nx: 3c010a14\nx: 3c010a14\n", "twice"),
        (b"TRT-8502-EntropyCalibration2\nx: 3c01zz14\n", "hex"),
        (b"TRT-8502-EntropyCalibration2\nx: 123456789\n", "hex"),
        (b"\xff\xfe binary", "not a text"),
    ],
)
def test_malformed_caches_raise_with_location(data: bytes, message: str) -> None:
    with pytest.raises(CalibCacheError, match=message):
        read_cache(data)


def test_crlf_is_read() -> None:
    cache = read_cache(b"TRT-8502-EntropyCalibration2\r\nx: 3c010a14\r\n")
    assert cache.scales == {"x": hex_to_scale("3c010a14")}


@pytest.mark.parametrize(
    "cache",
    [
        CalibCache(8502, "Percentile", {}),
        CalibCache(0, "EntropyCalibration2", {}),
        CalibCache(8502, "EntropyCalibration2", {"a\nb": 1.0}),
        CalibCache(8502, "EntropyCalibration2", {"a": -1.0}),
    ],
)
def test_write_rejects(cache: CalibCache) -> None:
    with pytest.raises(CalibCacheError):
        write_cache(cache)
