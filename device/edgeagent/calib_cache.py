"""TensorRT's int8 calibration-cache format: the one reader and writer in the repo.

The host writes caches (``edgesdk calibrate``, issue #5) and the device's calibrator reads
them (issue #3); both import this module. Pure standard library, Python 3.8.

Format (text, ``\\n`` line ends, as TensorRT writes it)::

    TRT-<version>-<algorithm>
    <tensor name>: <8 hex digits>
    ...

- ``<version>`` is TensorRT's ``NV_TENSORRT_VERSION`` of the build that wrote the cache:
  ``major*1000 + minor*100 + patch`` up to 8.x (8.5.2 -> ``8502``, 8.6.1 -> ``8601``) and
  ``major*10000 + minor*100 + patch`` from 10.0 on (10.3.0 -> ``100300``).
- ``<algorithm>`` is ``EntropyCalibration2`` (``IInt8EntropyCalibrator2``),
  ``EntropyCalibration``, ``MinMaxCalibration`` or ``LegacyCalibration``.
- Each value is the big-endian IEEE-754 float32 bit pattern of the tensor's *scale*,
  ``scale = threshold / 127`` (the activation saturates at ``threshold``), zero-padded to 8
  lower-case hex digits. Tensor names are those TensorRT's ONNX parser gives the tensors
  (ONNX tensor names, or ``(Unnamed Layer* N) [Type]_output`` for layers it adds); they may
  contain spaces.

TensorRT ignores a cache whose header names another TensorRT version and calibrates
again (NVIDIA/TensorRT#1378), so :func:`cache_matches` compares version codes exactly.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Dict, NamedTuple, Sequence, Tuple, Union

__all__ = [
    "ALGORITHMS",
    "CalibCache",
    "CalibCacheError",
    "cache_matches",
    "hex_to_scale",
    "read_cache",
    "scale_to_hex",
    "trt_version_code",
    "version_from_code",
    "write_cache",
]

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
"""Header algorithm names, one per TensorRT calibrator class."""

_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,8}$")

VersionLike = Union[str, int, Sequence[int]]


class CalibCacheError(ValueError):
    """A calibration cache cannot be parsed or written (message names the file and line)."""


class CalibCache(NamedTuple):
    """A parsed calibration cache.

    Attributes:
        version: TensorRT version code from the header (e.g. 8502, 100300).
        algorithm: header algorithm, one of :data:`ALGORITHMS`.
        scales: tensor name -> scale (= threshold / 127), in file order.
    """

    version: int
    algorithm: str
    scales: Dict[str, float]


def hex_to_scale(text: str) -> float:
    """Decode one cache value: big-endian float32 bits in hex (``"3c010a14"`` -> 0.00787...).

    Raises:
        CalibCacheError: not 1-8 hex digits.
    """
    if not _HEX.match(text):
        raise CalibCacheError(f"calibration cache value {text!r} is not 1-8 hex digits")
    return float(struct.unpack(">f", int(text, 16).to_bytes(4, "big"))[0])


def scale_to_hex(scale: float) -> str:
    """Encode one scale as TensorRT writes it: 8 lower-case hex digits of its float32 bits.

    Raises:
        CalibCacheError: the scale is negative, NaN or infinite.
    """
    if not math.isfinite(scale) or scale < 0:
        raise CalibCacheError(f"calibration scale must be finite and >= 0, got {scale!r}")
    return struct.pack(">f", scale).hex()


def trt_version_code(version: VersionLike) -> int:
    """TensorRT's ``NV_TENSORRT_VERSION`` for a version, as the cache header writes it.

    Args:
        version: ``"8.5.2.2"`` (``tensorrt.__version__``; the build number is ignored),
            a tuple ``(8, 5, 2)``, or an already computed code (returned unchanged).

    Returns:
        8502 for 8.5.2, 8601 for 8.6.1, 100300 for 10.3.0.

    Raises:
        CalibCacheError: unparsable version or a component out of range.
    """
    if isinstance(version, int):
        return version
    if isinstance(version, str):
        parts = version.strip().split(".")
        if not all(p.isdigit() for p in parts[:3]) or len(parts) < 2:
            raise CalibCacheError(f"TensorRT version {version!r} is not like '8.5.2.2'")
        numbers = [int(p) for p in parts[:3]]
    else:
        numbers = [int(v) for v in version][:3]
    major, minor, patch = (numbers + [0, 0, 0])[:3]
    if major < 10:
        if minor > 9 or patch > 99:
            raise CalibCacheError(f"TensorRT version {version!r}: minor must be < 10 and patch < 100 for 8.x")
        return major * 1000 + minor * 100 + patch
    if minor > 99 or patch > 99:
        raise CalibCacheError(f"TensorRT version {version!r}: minor and patch must be < 100")
    return major * 10000 + minor * 100 + patch


def version_from_code(code: int) -> Tuple[int, int, int]:
    """Invert :func:`trt_version_code`: 8502 -> (8, 5, 2), 100300 -> (10, 3, 0)."""
    if code >= 100000:
        return code // 10000, (code // 100) % 100, code % 100
    return code // 1000, (code // 100) % 10, code % 100


def _source_name(source: Union[bytes, str, Path]) -> str:
    return "<bytes>" if isinstance(source, bytes) else str(source)


def _parse_header(line: str, where: str) -> Tuple[int, str]:
    match = _HEADER.match(line)
    if not match:
        raise CalibCacheError(
            f"{where}:1: header {line[:80]!r} is not 'TRT-<version>-<algorithm>'; "
            "is this a TensorRT calibration cache?"
        )
    version, algorithm = int(match.group(1)), match.group(2)
    if algorithm not in ALGORITHMS:
        raise CalibCacheError(
            f"{where}:1: unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}"
        )
    return version, algorithm


def read_cache(source: Union[bytes, str, Path]) -> CalibCache:
    """Parse a TensorRT calibration cache.

    Args:
        source: the cache's bytes, or a path to it (``str`` is always a path).

    Returns:
        The parsed :class:`CalibCache`; ``scales`` keeps file order.

    Raises:
        CalibCacheError: bad header, malformed line, duplicate tensor, not UTF-8.
        OSError: the path cannot be read.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    where = _source_name(source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CalibCacheError(
            f"{where}: not a text calibration cache ({err.reason} at byte {err.start})"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise CalibCacheError(f"{where}: empty calibration cache")
    version, algorithm = _parse_header(lines[0].rstrip("\r"), where)
    scales: Dict[str, float] = {}
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        name, sep, value = line.rpartition(": ")
        if not sep or not name:
            raise CalibCacheError(f"{where}:{number}: expected '<tensor>: <hex>', got {line[:80]!r}")
        if name in scales:
            raise CalibCacheError(f"{where}:{number}: tensor {name!r} appears twice")
        try:
            scales[name] = hex_to_scale(value)
        except CalibCacheError as err:
            raise CalibCacheError(f"{where}:{number}: {err}") from None
    return CalibCache(version, algorithm, scales)


def write_cache(cache: CalibCache) -> bytes:
    """Serialise a cache exactly as TensorRT writes it (header, then one line per tensor).

    ``write_cache(read_cache(data)) == data`` for caches TensorRT wrote.

    Args:
        cache: version code, algorithm and scales (written in the mapping's order).

    Returns:
        The cache file's bytes (UTF-8, ``\\n`` line ends, trailing newline).

    Raises:
        CalibCacheError: unknown algorithm, bad version, a tensor name with a newline or an
            empty name, or a negative/non-finite scale.
    """
    if cache.algorithm not in ALGORITHMS:
        raise CalibCacheError(
            f"unknown algorithm {cache.algorithm!r}; expected one of {', '.join(ALGORITHMS)}"
        )
    if not isinstance(cache.version, int) or cache.version <= 0:
        raise CalibCacheError(f"version must be a positive TensorRT version code, got {cache.version!r}")
    out = [f"TRT-{cache.version}-{cache.algorithm}"]
    for name, scale in cache.scales.items():
        if not name or "\n" in name or "\r" in name:
            raise CalibCacheError(f"tensor name {name!r} cannot be written to a calibration cache")
        out.append(f"{name}: {scale_to_hex(float(scale))}")
    return ("\n".join(out) + "\n").encode("utf-8")


def cache_matches(
    cache: CalibCache, trt_version: VersionLike, algorithm: str = "EntropyCalibration2"
) -> bool:
    """Whether TensorRT ``trt_version`` will use ``cache`` instead of calibrating again.

    Args:
        cache: a parsed cache.
        trt_version: the device's TensorRT (``"8.5.2.2"``, ``(10, 3, 0)`` or a code).
        algorithm: the calibrator that will read it (``IInt8EntropyCalibrator2`` by default).

    Returns:
        True when the header's version code and algorithm both match exactly.
    """
    return cache.version == trt_version_code(trt_version) and cache.algorithm == algorithm
