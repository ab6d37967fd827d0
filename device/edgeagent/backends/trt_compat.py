"""TensorRT version switches and build planning, kept pure (no TensorRT import) and tested.

Supported: TensorRT 8.5 (JetPack 5.1), 8.6 (JetPack 6.0) and 10.x (JetPack 6.1/6.2 ship
10.3). Every API difference the backend cares about is one field of :class:`TrtApi`, decided
here from the version tuple alone:

| difference | 8.5 | 8.6 | 10.x |
|---|---|---|---|
| ``create_network`` flag ``EXPLICIT_BATCH`` | required | required | deprecated, ignored (always explicit) |
| ``builder.platform_has_fast_fp16/int8`` | yes | yes | deprecated in 10.5 (not queried from 10.5) |
| named I/O tensors, ``execute_async_v3`` | yes (new in 8.5) | yes | yes (bindings API removed) |
| ``IInt8EntropyCalibrator2`` / ``config.int8_calibrator`` | yes | yes | deprecated in 10.1, still works |
| calibration-cache header version | ``8502`` | ``8601``/``8602`` | ``100300`` (``major*10000``) |

``set_memory_pool_limit(MemoryPoolType.WORKSPACE, …)`` and ``build_serialized_network``
exist in all three (8.4+), so they need no switch.
"""

from __future__ import annotations

from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from edgeagent.backends.base import BackendError
from edgeagent.calib_cache import trt_version_code

__all__ = [
    "BuildOptions",
    "BuildPlan",
    "TrtApi",
    "api_for",
    "dims_to_tuple",
    "int8_source",
    "numpy_dtype",
    "parse_build_options",
    "parse_trt_version",
    "pick_profile_shape",
    "plan_build",
]

MIN_VERSION = (8, 5, 0)
"""Oldest TensorRT with named I/O tensors and ``execute_async_v3`` (JetPack 5.1)."""

PRECISIONS = ("fp32", "fp16", "int8")

# TensorRT DataType member name -> numpy dtype name, for engine inputs/outputs.
_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",  # TensorRT 10+
    "BOOL": "bool",
    "UINT8": "uint8",
}


class TrtApi(NamedTuple):
    """Which TensorRT API to call, for one TensorRT version (see the module table)."""

    version: Tuple[int, int, int]
    explicit_batch_flag: bool
    platform_queries: bool
    implicit_int8_deprecated: bool

    @property
    def cache_version(self) -> int:
        """The calibration-cache header code this TensorRT writes and accepts."""
        return trt_version_code(self.version)

    @property
    def label(self) -> str:
        return ".".join(str(v) for v in self.version)


def parse_trt_version(version: Union[str, Sequence[int]]) -> Tuple[int, int, int]:
    """``"8.5.2.2"`` (``tensorrt.__version__``) or ``(10, 3)`` -> ``(major, minor, patch)``.

    Raises:
        BackendError: not a dotted version.
    """
    if isinstance(version, str):
        parts = version.strip().split(".")[:3]
        if len(parts) < 2 or not all(p.isdigit() for p in parts):
            raise BackendError(f"cannot read the TensorRT version {version!r} (expected like '8.5.2.2')")
        numbers = [int(p) for p in parts]
    else:
        numbers = [int(v) for v in version][:3]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def api_for(version: Union[str, Sequence[int]]) -> TrtApi:
    """The API switches for a TensorRT version.

    Raises:
        BackendError: TensorRT older than 8.5 or newer than 10.x (not supported).
    """
    v = parse_trt_version(version)
    if v < MIN_VERSION:
        raise BackendError(
            f"TensorRT {'.'.join(map(str, v))} is too old: the trt backend needs TensorRT >= 8.5 "
            "(JetPack 5.1 or newer); upgrade JetPack or use --backend ort"
        )
    if v[0] > 10:
        raise BackendError(
            f"TensorRT {'.'.join(map(str, v))} is not supported yet (8.5, 8.6 and 10.x are); "
            "use --backend ort or an older JetPack"
        )
    return TrtApi(
        version=v,
        explicit_batch_flag=v[0] < 10,
        platform_queries=v < (10, 5, 0),
        implicit_int8_deprecated=v >= (10, 1, 0),
    )


def int8_source(api: TrtApi, has_qdq_model: bool, has_calibration_data: bool) -> str:
    """Which int8 route an int8 build takes, from what the bundle carries.

    ``"qdq"``: parse the bundle's Q/DQ model (explicit quantization, no calibrator) — when there is
    no calibration data, and on TensorRT >= 10.1 whenever the Q/DQ model exists (calibrator-based
    int8 is deprecated there, and the Q/DQ model is what the host's accuracy preview ran).
    ``"calibrator"``: parse the float model and calibrate (the host's cache when its header
    matches, else on the pushed images) — TensorRT 8.5/8.6 with calibration data.
    ``"none"``: neither; :func:`plan_build` then refuses int8 with what to do.
    """
    if has_qdq_model and (api.implicit_int8_deprecated or not has_calibration_data):
        return "qdq"
    return "calibrator" if has_calibration_data else "none"


class BuildOptions(NamedTuple):
    """The bundle manifest's ``build`` section, checked.

    Attributes:
        precision: ``fp32``, ``fp16`` or ``int8``.
        workspace_mb: builder workspace pool limit, MiB.
        dla_core: DLA core index, or None for the GPU.
        gpu_fallback: let layers DLA cannot run fall back to the GPU.
        input_shape: (N, C, H, W) to pin a dynamic-shape input to, or None.
    """

    precision: str
    workspace_mb: int
    dla_core: Optional[int]
    gpu_fallback: bool
    input_shape: Optional[Tuple[int, ...]]

    @property
    def workspace_bytes(self) -> int:
        return self.workspace_mb * (1 << 20)


_OPTION_KEYS = ("precision", "workspace_mb", "dla_core", "gpu_fallback", "input_shape")


def _int_option(options: Mapping[str, Any], key: str, default: Any, minimum: int) -> Any:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BackendError(f"build option {key}={value!r}: expected an integer >= {minimum}")
    return value


def parse_build_options(options: Mapping[str, Any]) -> BuildOptions:
    """Check the manifest's ``build`` mapping (defaults: fp16, 1024 MiB, GPU, fallback on).

    Raises:
        BackendError: an unknown key or a bad value (the message names it).
    """
    unknown = sorted(set(options) - set(_OPTION_KEYS))
    if unknown:
        raise BackendError(f"unknown build option(s) {unknown}; expected {', '.join(_OPTION_KEYS)}")
    precision = options.get("precision", "fp16")
    if precision not in PRECISIONS:
        raise BackendError(f"build precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    fallback = options.get("gpu_fallback", True)
    if not isinstance(fallback, bool):
        raise BackendError(f"build option gpu_fallback={fallback!r}: expected true or false")
    shape = options.get("input_shape")
    if shape is not None:
        if (
            not isinstance(shape, (list, tuple))
            or len(shape) != 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise BackendError(f"build option input_shape={shape!r}: expected 4 positive integers N, C, H, W")
        shape = tuple(shape)
    return BuildOptions(
        precision=str(precision),
        workspace_mb=int(_int_option(options, "workspace_mb", 1024, 16)),
        dla_core=_int_option(options, "dla_core", None, 0),
        gpu_fallback=fallback,
        input_shape=shape,
    )


class BuildPlan(NamedTuple):
    """What to set on the builder config for one build.

    Attributes:
        flags: ``BuilderFlag`` member names to set.
        use_calibrator: attach the int8 calibrator (implicit quantization).
        notes: lines worth reporting (fallbacks, deprecations, checks skipped).
    """

    flags: Tuple[str, ...]
    use_calibrator: bool
    notes: Tuple[str, ...]


def _check_fast(api: TrtApi, fast: Optional[bool], what: str, notes: List[str], hint: str) -> None:
    if not api.platform_queries:
        notes.append(
            f"fast {what} not queried (deprecated from TensorRT 10.5); TensorRT falls back if absent"
        )
    elif fast is None:
        notes.append(f"fast {what} support not checked")
    elif not fast:
        raise BackendError(
            f"this GPU has no fast {what} (TensorRT platform_has_fast_{what} is false); {hint}"
        )


def plan_build(
    api: TrtApi,
    options: BuildOptions,
    *,
    has_qdq: bool,
    has_calibrator: bool,
    fast_fp16: Optional[bool] = None,
    fast_int8: Optional[bool] = None,
    dla_cores: Optional[int] = None,
) -> BuildPlan:
    """Decide builder flags and whether to calibrate.

    int8 also sets FP16 so layers without an int8 kernel run in fp16 rather than fp32.
    A Q/DQ model (explicit quantization) gets INT8 without a calibrator.

    Args:
        api: from :func:`api_for`.
        options: from :func:`parse_build_options`.
        has_qdq: the parsed network contains Quantize/Dequantize layers.
        has_calibrator: the caller passed a calibrator.
        fast_fp16: ``builder.platform_has_fast_fp16`` (None when not queried).
        fast_int8: ``builder.platform_has_fast_int8`` (None when not queried).
        dla_cores: ``builder.num_DLA_cores`` (None when unknown).

    Raises:
        BackendError: a combination that cannot build, with what to change.
    """
    notes: List[str] = []
    flags: List[str] = []
    if options.precision == "fp16":
        _check_fast(api, fast_fp16, "fp16", notes, "build with --precision fp32")
        flags.append("FP16")
    use_calibrator = False
    if options.precision == "int8":
        _check_fast(api, fast_int8, "int8", notes, "build with --precision fp16")
        flags += ["INT8", "FP16"]
        if has_qdq:
            if has_calibrator:
                notes.append("the model has Q/DQ nodes (explicit quantization): the calibrator is not used")
        elif has_calibrator:
            use_calibrator = True
            if api.implicit_int8_deprecated:
                notes.append(
                    f"TensorRT {api.label}: calibrator-based int8 is deprecated since 10.1; "
                    "a Q/DQ model (edgesdk calibrate) is the supported path"
                )
        else:
            raise BackendError(
                "int8 without calibration: the model has no Q/DQ nodes and no calibration images or "
                "cache were given; run `edgesdk calibrate` (or deploy the Q/DQ model), or build fp16"
            )
    elif has_qdq:
        raise BackendError(
            f"the model has Q/DQ nodes (an int8 model) but precision is {options.precision}; build with "
            "--precision int8 or deploy the float model"
        )
    if options.dla_core is not None:
        if options.precision == "fp32":
            raise BackendError(
                "DLA runs fp16 or int8 only: build with --precision fp16 or int8, or without --dla"
            )
        if dla_cores is not None and options.dla_core >= dla_cores:
            have = f"cores 0..{dla_cores - 1}" if dla_cores else "no DLA cores"
            raise BackendError(f"DLA core {options.dla_core} requested but this device has {have}")
        if options.gpu_fallback:
            flags.append("GPU_FALLBACK")
        else:
            notes.append("GPU fallback off: the build fails if any layer cannot run on the DLA")
    return BuildPlan(tuple(flags), use_calibrator, tuple(notes))


def numpy_dtype(trt_dtype_name: str) -> str:
    """numpy dtype name for a TensorRT ``DataType`` member name (``"HALF"`` -> ``"float16"``).

    Raises:
        BackendError: a type numpy cannot hold for engine I/O (FP8, BF16, INT4, …).
    """
    try:
        return _DTYPES[trt_dtype_name]
    except KeyError:
        raise BackendError(
            f"engine I/O tensor of type {trt_dtype_name} has no numpy equivalent; "
            f"export the model with {', '.join(sorted(_DTYPES))} inputs and outputs"
        ) from None


def dims_to_tuple(dims: Any) -> Tuple[int, ...]:
    """A TensorRT ``Dims`` (or any sequence) -> tuple of ints; -1 marks a dynamic dimension."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def pick_profile_shape(name: str, engine_shape: Tuple[int, ...], profile: Sequence[Any]) -> Tuple[int, ...]:
    """The shape to run a dynamic input at: the profile's opt shape (min = opt = max when built here).

    Args:
        name: tensor name (for the message).
        engine_shape: the engine's shape with -1 for dynamic dimensions.
        profile: ``[min, opt, max]`` from ``engine.get_tensor_profile_shape(name, 0)``.

    Raises:
        BackendError: no profile for a dynamic input.
    """
    if all(d >= 0 for d in engine_shape):
        return engine_shape
    if len(profile) != 3:
        raise BackendError(f"input {name!r} has dynamic shape {engine_shape} and no optimisation profile")
    return dims_to_tuple(profile[1])
