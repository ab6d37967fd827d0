"""Host glue for TensorRT calibration caches (the format lives in ``edgeagent.calib_cache``).

The header's version must be the *device's* TensorRT: TensorRT ignores a cache written for
another version and calibrates again. ``--trt`` takes a JetPack-era short form or a full
version: ``8.5`` = 8.5.2 (JetPack 5.1, header 8502), ``8.6`` = 8.6.2 (JetPack 6.0, 8602),
``10.3`` = 10.3.0 (JetPack 6.1/6.2, 100300); ``8.6.1`` gives 8601.

The header's algorithm is always ``EntropyCalibration2``: it names the calibrator *class*
the device builds with (``IInt8EntropyCalibrator2``), which is what TensorRT compares; the
scales themselves may come from any host calibrator (summary.json records which).
Each line holds ``scale = threshold / 127``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from edgeagent.calib_cache import CalibCache, CalibCacheError, read_cache, trt_version_code, write_cache
from edgesdk.errors import CalibrationError

__all__ = [
    "CACHE_ALGORITHM",
    "DEFAULT_TRT",
    "TRT_TARGETS",
    "make_cache",
    "missing_names",
    "read_thresholds",
    "trt_code",
]

CACHE_ALGORITHM = "EntropyCalibration2"

TRT_TARGETS = {"8.5": "8.5.2", "8.6": "8.6.2", "10.3": "10.3.0"}
"""Short ``--trt`` forms -> the TensorRT release JetPack ships."""

DEFAULT_TRT = "8.5"


def trt_code(target: str) -> int:
    """The cache header version code for ``--trt`` (``8.5`` -> 8502, ``10.3`` -> 100300).

    Args:
        target: a short form from :data:`TRT_TARGETS`, a version like ``8.6.1``, or a code.

    Raises:
        CalibrationError: not a TensorRT version.
    """
    text = str(target).strip()
    if text.isdigit() and len(text) >= 4:
        return int(text)
    try:
        return trt_version_code(TRT_TARGETS.get(text, text))
    except CalibCacheError as err:
        raise CalibrationError(
            f"--trt {target!r} is not a TensorRT version",
            hint=f"use {', '.join(TRT_TARGETS)} or a full version such as 8.6.1",
        ) from err


def make_cache(thresholds: Mapping[str, float], trt: str = DEFAULT_TRT) -> bytes:
    """The TensorRT calibration cache for ``thresholds`` (written in their order).

    Args:
        thresholds: tensor name -> saturation threshold (> 0).
        trt: the device's TensorRT (see :func:`trt_code`).

    Raises:
        CalibrationError: a bad version, a non-positive/non-finite threshold, or a name the
            format cannot hold.
    """
    try:
        scales = {name: float(threshold) / 127.0 for name, threshold in thresholds.items()}
        return write_cache(CalibCache(trt_code(trt), CACHE_ALGORITHM, scales))
    except CalibCacheError as err:
        raise CalibrationError(f"cannot write the calibration cache: {err}") from err


def read_thresholds(source: bytes | Path) -> tuple[int, dict[str, float]]:
    """(version code, tensor name -> threshold) from a calibration cache.

    Raises:
        CalibrationError: the cache does not parse.
    """
    try:
        cache = read_cache(source if isinstance(source, bytes) else Path(source))
    except (CalibCacheError, OSError) as err:
        raise CalibrationError(
            f"cannot read calibration cache {source if isinstance(source, Path) else ''}: {err}"
        ) from err
    return cache.version, {name: scale * 127.0 for name, scale in cache.scales.items()}


def missing_names(cache: bytes, tensor_names: Iterable[str]) -> list[str]:
    """Cache entries that name no tensor of the model (TensorRT would ignore them)."""
    known = set(tensor_names)
    return [name for name in read_thresholds(cache)[1] if name not in known]
