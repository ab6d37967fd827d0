"""int8 calibration for TensorRT: image batches (pure) and the entropy calibrator (factory).

:class:`CalibrationBatches` turns the pushed calibration images into NCHW float32 batches
with the recipe's own pre-processing (the same :func:`edgeagent.vision.preprocess.preprocess_batch`
the host uses), so device calibration sees exactly what inference will see.

:func:`make_entropy_calibrator` defines its ``tensorrt.IInt8EntropyCalibrator2`` subclass
inside the function: importing this module never needs TensorRT or pycuda.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edgeagent.backends.base import BackendError
from edgeagent.backends.trt_log import NO_TENSORRT
from edgeagent.calib_cache import CalibCacheError, cache_matches, read_cache

__all__ = ["CalibrationBatches", "CalibrationDataError", "make_entropy_calibrator"]

_log = logging.getLogger(__name__)

PathLike = Union[str, Path]


class CalibrationDataError(BackendError, ValueError):
    """Calibration images are missing, too few, unreadable, or give the wrong shape."""


def _check_shape(input_shape: Sequence[int]) -> Tuple[int, int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or any(d <= 0 for d in shape) or shape[1] not in (1, 3):
        raise CalibrationDataError(
            f"calibration input_shape {tuple(input_shape)}: expected N, C (1 or 3), H, W > 0"
        )
    return shape[0], shape[1], shape[2], shape[3]


class CalibrationBatches:
    """Iterate contiguous (N, C, H, W) float32 batches made from image files.

    Images are read with OpenCV (BGR, or grey for C = 1) and pre-processed with the recipe's
    parameters. Unreadable files are skipped and listed in :attr:`skipped` (with a warning).
    The last partial batch is **dropped**, not padded: padding would repeat images and bias
    the activation histograms; :attr:`dropped` counts the images left out. Each iteration
    starts over from the first image, holding one batch in memory at a time.

    Args:
        image_paths: calibration images (any format OpenCV reads).
        preprocess: the recipe's resolved ``preprocess`` mapping (resize, pad_value, color,
            scale, mean, std, interpolation).
        input_shape: the network input (N, C, H, W); N is the calibration batch size.

    Raises:
        CalibrationDataError: a bad shape, or fewer images than one batch.
    """

    def __init__(
        self, image_paths: Sequence[PathLike], preprocess: Mapping[str, Any], input_shape: Sequence[int]
    ) -> None:
        self.shape = _check_shape(input_shape)
        self.paths = [Path(p) for p in image_paths]
        if len(self.paths) < self.batch_size:
            raise CalibrationDataError(
                f"calibration needs at least one batch of {self.batch_size} images, got {len(self.paths)}; "
                "push more calibration images (edgesdk calibrate picks them)"
            )
        self.params = dict(preprocess)
        self.skipped: List[Path] = []
        self.dropped = 0

    @property
    def batch_size(self) -> int:
        return self.shape[0]

    @property
    def max_batches(self) -> int:
        """Batches if every image reads (``len(paths) // N``)."""
        return len(self.paths) // self.batch_size

    def _read(self, path: Path) -> Optional[np.ndarray]:
        import cv2

        flag = cv2.IMREAD_COLOR if self.shape[1] == 3 else cv2.IMREAD_GRAYSCALE
        image = cv2.imread(str(path), flag)
        if image is None:
            _log.warning("calibration image %s cannot be read; skipped", path)
            self.skipped.append(path)
        return image

    def _batch(self, images: List[np.ndarray]) -> np.ndarray:
        from edgeagent.vision.preprocess import preprocess_batch

        n, c, h, w = self.shape
        batch, _ = preprocess_batch(images, (h, w), self.params)
        if batch.shape != self.shape:
            raise CalibrationDataError(
                f"pre-processing gave batches of shape {batch.shape}, the network input is {self.shape}; "
                "check the recipe's input shape and colour settings"
            )
        return np.ascontiguousarray(batch, dtype=np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        self.skipped = []
        self.dropped = 0
        pending: List[np.ndarray] = []
        produced = 0
        for path in self.paths:
            image = self._read(path)
            if image is None:
                continue
            pending.append(image)
            if len(pending) == self.batch_size:
                yield self._batch(pending)
                produced += 1
                pending = []
        self.dropped = len(pending)
        if produced == 0:
            raise CalibrationDataError(
                f"no full calibration batch: {len(self.skipped)} of {len(self.paths)} images unreadable, "
                f"batch size {self.batch_size}"
            )


def _cache_bytes(path: Optional[Path], trt_version: str) -> Optional[bytes]:
    """The cache at ``path`` if TensorRT ``trt_version`` will accept it, else None (logged)."""
    if path is None or not path.is_file():
        return None
    data = path.read_bytes()
    try:
        cache = read_cache(data)
    except CalibCacheError as err:
        _log.warning("ignoring calibration cache %s: %s", path, err)
        return None
    if not cache_matches(cache, trt_version):
        _log.info(
            "calibration cache %s is TRT-%d-%s, this TensorRT is %s: calibrating on the device",
            path,
            cache.version,
            cache.algorithm,
            trt_version,
        )
        return None
    return data


def make_entropy_calibrator(
    batches: Iterable[np.ndarray],
    cache_path: PathLike,
    *,
    batch_size: int,
    input_shape: Sequence[int],
    host_cache: Optional[PathLike] = None,
) -> Any:
    """Create a ``tensorrt.IInt8EntropyCalibrator2`` fed by ``batches``.

    TensorRT first calls ``read_calibration_cache``: when ``host_cache`` (the cache computed
    on the host and pushed in the bundle) or ``cache_path`` holds a cache whose header
    matches this TensorRT version, it is returned and TensorRT skips calibration. Otherwise
    TensorRT calls ``get_batch`` until it returns None, then ``write_calibration_cache``,
    which writes ``cache_path`` atomically.

    Must be used while a CUDA context is current (``build_engine`` pushes one). The calibrator
    records the first exception raised inside a callback in ``.error`` (TensorRT cannot carry
    Python exceptions through C++); ``build_engine`` re-raises it.

    Args:
        batches: iterable of (N, C, H, W) float32 arrays, e.g. :class:`CalibrationBatches`.
        cache_path: where to write (and first try to read) this device's cache.
        batch_size: N, the calibration batch size.
        input_shape: (N, C, H, W) of the single network input.
        host_cache: the host's cache, read before ``cache_path``.

    Raises:
        BackendError: TensorRT or pycuda missing, or inconsistent shapes.
    """
    shape = _check_shape(input_shape)
    if batch_size != shape[0]:
        raise CalibrationDataError(
            f"calibration batch_size {batch_size} differs from input_shape N = {shape[0]}"
        )
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as err:
        raise BackendError(NO_TENSORRT + "; calibration also needs pycuda (pip3 install pycuda)") from err

    from edgeagent.files import atomic_write

    write_path = Path(cache_path)
    read_paths = [Path(host_cache) if host_cache is not None else None, write_path]
    nbytes = int(np.prod(shape)) * 4

    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches: Optional[Iterator[np.ndarray]] = None
            self._device: Any = None
            self.error: Optional[BaseException] = None
            self.batches_fed = 0
            self.cache_used: Optional[Path] = None

        def get_batch_size(self) -> int:
            return batch_size

        # TensorRT takes None as "no more batches", which the stubs' list[int] does not express.
        def get_batch(self, names: List[str]) -> Optional[List[int]]:  # type: ignore[override]
            try:
                return self._next(names)
            except BaseException as err:  # must not propagate into TensorRT's C++ frames
                self.error = self.error or err
                return None

        def _next(self, names: List[str]) -> Optional[List[int]]:
            if len(names) != 1:
                raise CalibrationDataError(
                    f"calibration supports one network input, this network has {names}"
                )
            if self._batches is None:
                self._batches = iter(batches)
            batch = next(self._batches, None)
            if batch is None:
                return None
            if batch.shape != shape or batch.dtype != np.float32:
                raise CalibrationDataError(
                    f"calibration batch {batch.shape} {batch.dtype}, expected {shape} float32"
                )
            if self._device is None:
                self._device = cuda.mem_alloc(nbytes)
            cuda.memcpy_htod(self._device, np.ascontiguousarray(batch))
            self.batches_fed += 1
            return [int(self._device)]

        # None means "no cache": TensorRT then calibrates; the stubs only say Buffer.
        def read_calibration_cache(self) -> Optional[bytes]:  # type: ignore[override]
            for path in read_paths:
                data = _cache_bytes(path, trt.__version__)
                if data is not None:
                    self.cache_used = path
                    return data
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            try:
                write_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(write_path, bytes(cache))
            except BaseException as err:
                self.error = self.error or err

        def free(self) -> None:
            """Release the device buffer (call after the build)."""
            if self._device is not None:
                self._device.free()
                self._device = None

    return _EntropyCalibrator()
