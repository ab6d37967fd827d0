"""TensorRT backend (Jetson): build engines from ONNX, run them, describe the device.

- :func:`build_engine`: ONNX -> serialised engine (fp32/fp16/int8, optional DLA core).
- :class:`~edgeagent.backends.trt_runner.TrtBackend`: run an engine behind the protocol.
- :func:`make_entropy_calibrator` / :class:`CalibrationBatches`: int8 calibration.
- :func:`device_facts` / :func:`trt_fingerprint`: what the engine cache keys on.

TensorRT and pycuda are imported inside functions: importing this module works anywhere.
Version differences (8.5, 8.6, 10.x) are decided in :mod:`edgeagent.backends.trt_compat`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

from edgeagent.backends.base import BackendError
from edgeagent.backends.trt_calibrator import (
    CalibrationBatches,
    CalibrationDataError,
    make_entropy_calibrator,
)
from edgeagent.backends.trt_compat import (
    BuildOptions,
    BuildPlan,
    TrtApi,
    api_for,
    dims_to_tuple,
    parse_build_options,
    plan_build,
)
from edgeagent.backends.trt_log import NO_TENSORRT, LogArg, LogTail, TrtError, as_log_tail, make_trt_logger
from edgeagent.backends.trt_runner import CudaContext, TrtBackend
from edgeagent.engines import make_fingerprint

if TYPE_CHECKING:  # the tensorrt-stubs package (tools/trt_stubs.sh); Any without it
    import tensorrt

__all__ = [
    "CalibrationBatches",
    "CalibrationDataError",
    "LogTail",
    "TrtBackend",
    "TrtError",
    "build_engine",
    "device_facts",
    "make_entropy_calibrator",
    "trt_fingerprint",
    "trt_version",
]

_log = logging.getLogger(__name__)

_BUILD_HINT = (
    "common causes: workspace too small (raise build.workspace_mb), a layer the DLA cannot run "
    "(set build.gpu_fallback: true), an operator this TensorRT lacks (edgesdk export --lint)"
)


def trt_version() -> Optional[str]:
    """``tensorrt.__version__`` (e.g. ``"8.5.2.2"``), or None when TensorRT is not installed."""
    try:
        import tensorrt as trt
    except ImportError:
        return None
    return str(trt.__version__)


def _parse_onnx(
    api: TrtApi, builder: tensorrt.Builder, logger: Any, path: Path, tail: LogTail
) -> Tuple[tensorrt.INetworkDefinition, tensorrt.OnnxParser]:
    """Parse the ONNX file into a new network; the parser must outlive the network (it owns weights)."""
    import tensorrt as trt

    flags = 0
    if api.explicit_batch_flag:  # 8.x needs it; 10.x networks are always explicit-batch
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(path.read_bytes(), str(path)):  # path: resolves external weight files
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0] if errors else "no parser detail"
        raise TrtError(
            f"TensorRT {api.label}'s ONNX parser rejected {path.name}: {first}; "
            "run `edgesdk export --lint` for this TensorRT version",
            errors + tail.lines(worst_first=True),
        )
    return network, parser


def _has_qdq(network: tensorrt.INetworkDefinition) -> bool:
    """Whether the parsed network holds Quantize/Dequantize layers (explicit quantization)."""
    import tensorrt as trt

    kinds = (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
    return any(network.get_layer(i).type in kinds for i in range(network.num_layers))


def _input_profile(
    builder: tensorrt.Builder, network: tensorrt.INetworkDefinition, opts: BuildOptions
) -> Optional[tensorrt.IOptimizationProfile]:
    """An optimisation profile pinning a dynamic input to ``opts.input_shape`` (min = opt = max)."""
    import tensorrt as trt

    dynamic = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = dims_to_tuple(tensor.shape)
        if any(d < 0 for d in shape):
            dynamic.append((tensor.name, shape))
    if not dynamic:
        return None
    fixed = opts.input_shape
    if len(dynamic) > 1 or fixed is None:
        raise BackendError(
            f"the model has dynamic input shapes {dynamic}; export it with a static shape "
            "(edgesdk export does) or set build.input_shape for a single input"
        )
    name, shape = dynamic[0]
    if len(shape) != len(fixed) or any(d >= 0 and d != f for d, f in zip(shape, fixed)):
        raise BackendError(f"build.input_shape {fixed} does not fit input {name!r} of shape {shape}")
    profile = builder.create_optimization_profile()
    dims = trt.Dims(list(fixed))
    profile.set_shape(name, dims, dims, dims)
    return profile


def _configure(
    builder: tensorrt.Builder,
    opts: BuildOptions,
    plan: BuildPlan,
    profile: Optional[tensorrt.IOptimizationProfile],
    calibrator: Any,
) -> tensorrt.IBuilderConfig:
    import tensorrt as trt

    flag_table = {
        "FP16": trt.BuilderFlag.FP16,
        "INT8": trt.BuilderFlag.INT8,
        "GPU_FALLBACK": trt.BuilderFlag.GPU_FALLBACK,
    }
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_bytes)
    for name in plan.flags:
        config.set_flag(flag_table[name])
    if opts.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = opts.dla_core
    if profile is not None:
        config.add_optimization_profile(profile)
    if plan.use_calibrator:
        config.int8_calibrator = calibrator  # deprecated from 10.1, still honoured in 10.x
        if profile is not None:
            config.set_calibration_profile(profile)
    return config


def _plan(
    api: TrtApi, builder: tensorrt.Builder, opts: BuildOptions, has_qdq: bool, calibrated: bool
) -> BuildPlan:
    fast_fp16 = fast_int8 = None
    if api.platform_queries:  # deprecated from 10.5: do not call there
        fast_fp16, fast_int8 = bool(builder.platform_has_fast_fp16), bool(builder.platform_has_fast_int8)
    dla_cores = int(builder.num_DLA_cores) if opts.dla_core is not None else None
    return plan_build(
        api,
        opts,
        has_qdq=has_qdq,
        has_calibrator=calibrated,
        fast_fp16=fast_fp16,
        fast_int8=fast_int8,
        dla_cores=dla_cores,
    )


def _serialize(
    builder: tensorrt.Builder,
    network: tensorrt.INetworkDefinition,
    config: tensorrt.IBuilderConfig,
    calibrator: Any,
    plan: BuildPlan,
) -> Any:
    """``build_serialized_network``, inside a CUDA context when the calibrator needs pycuda."""
    if not plan.use_calibrator:
        return builder.build_serialized_network(network, config)
    cuda = CudaContext()
    try:
        with cuda:
            try:
                return builder.build_serialized_network(network, config)
            finally:
                free = getattr(calibrator, "free", None)
                if callable(free):
                    free()
    finally:
        cuda.release()


def build_engine(
    onnx_path: Union[str, Path],
    options: Mapping[str, Any],
    *,
    calibration: Any = None,
    log: LogArg = None,
) -> bytes:
    """Build a serialised TensorRT engine from an ONNX model.

    Args:
        onnx_path: the ONNX model (external weight files beside it are found).
        options: the manifest's ``build`` section: ``precision`` (fp32|fp16|int8),
            ``workspace_mb``, ``dla_core`` (None or int), ``gpu_fallback``, optional
            ``input_shape`` for a dynamic-shape input.
        calibration: for int8 without Q/DQ nodes, a calibrator from
            :func:`make_entropy_calibrator`; ignored (with a note) for Q/DQ models.
        log: where TensorRT's warnings/errors and our notes go: a :class:`LogTail`, or a
            ``callback(line)`` receiving ``"[W] message"`` lines (e.g. agent log events).

    Returns:
        The serialised engine.

    Raises:
        BackendError: bad options, TensorRT missing, or a precision/DLA combination this
            device cannot build (message says what to change).
        TrtError: the ONNX parser or the builder failed; carries the TensorRT log lines.
        CalibrationDataError: the calibration images failed during the build.
    """
    try:
        import tensorrt as trt
    except ImportError as err:
        raise BackendError(NO_TENSORRT) from err
    opts = parse_build_options(options)
    api = api_for(trt.__version__)
    tail = as_log_tail(log)
    path = Path(onnx_path)
    if not path.is_file():
        raise BackendError(f"ONNX model {path} does not exist; push the bundle again (edgesdk deploy)")
    logger = make_trt_logger(tail)
    builder = trt.Builder(logger)
    network, parser = _parse_onnx(api, builder, logger, path, tail)
    plan = _plan(api, builder, opts, _has_qdq(network), calibration is not None)
    for note in plan.notes:
        tail.add("warning", "edgeagent: " + note)
    config = _configure(builder, opts, plan, _input_profile(builder, network, opts), calibration)
    start = time.monotonic()
    serialized = _serialize(builder, network, config, calibration, plan)
    error = getattr(calibration, "error", None) if plan.use_calibrator else None
    if error is not None:
        raise CalibrationDataError(f"int8 calibration failed: {error}") from error
    if serialized is None:
        raise tail.error(
            f"TensorRT {api.label} could not build {path.name} ({opts.precision}); {_BUILD_HINT}"
        )
    _log.info("built %s (%s) in %.1f s", path.name, opts.precision, time.monotonic() - start)
    del parser  # only now: the network referenced the parser's weights until the build finished
    return bytes(serialized)


def device_facts(device: int = 0) -> Dict[str, Any]:
    """What an engine depends on besides the model: TensorRT version, GPU, compute capability.

    Values are None where TensorRT or pycuda is not installed.
    """
    facts: Dict[str, Any] = {"tensorrt": trt_version(), "gpu": None, "compute_capability": None}
    try:
        import pycuda.driver as cuda
    except ImportError:
        return facts
    cuda.init()
    gpu = cuda.Device(device)
    major, minor = gpu.compute_capability()
    facts.update(gpu=str(gpu.name()), compute_capability=f"{major}.{minor}")
    return facts


def trt_fingerprint(
    model_sha256: str,
    options: Mapping[str, Any],
    facts: Mapping[str, Any],
    *,
    calibration_sha256: Optional[str] = None,
) -> Dict[str, Any]:
    """The engine-cache fingerprint of a TensorRT build (pure given ``facts``).

    Args:
        model_sha256: sha256 of the ONNX model to build.
        options: the manifest's ``build`` section.
        facts: :func:`device_facts` of the device.
        calibration_sha256: sha256 of the calibration cache or image list; kept only for int8.

    Raises:
        BackendError: bad options, or ``facts`` without a TensorRT version.
    """
    opts = parse_build_options(options)
    if not facts.get("tensorrt"):
        raise BackendError("device facts have no TensorRT version: is TensorRT installed on this device?")
    return make_fingerprint(
        model_sha256=model_sha256,
        precision=opts.precision,
        calibration_sha256=calibration_sha256 if opts.precision == "int8" else None,
        backend="trt",
        backend_version=str(facts["tensorrt"]),
        gpu=facts.get("gpu"),
        compute_capability=facts.get("compute_capability"),
        dla_core=opts.dla_core,
        workspace_mb=opts.workspace_mb,
    )
