"""int8 on the host: calibration images, activation statistics, thresholds, TensorRT cache, Q/DQ models.

``edgesdk calibrate`` is :func:`calibrate`; ``edgesdk eval --precision int8`` is
:func:`~edgesdk.quant.preview.int8_preview`. See each module's docstring for the algorithms.
"""

from __future__ import annotations

from edgesdk.quant.cache import DEFAULT_TRT, TRT_TARGETS, make_cache, read_thresholds, trt_code
from edgesdk.quant.calibrate import (
    CalibrationResult,
    Prepared,
    calibrate,
    finish,
    load_qdq,
    prepare,
    qdq_model,
    write_outputs,
)
from edgesdk.quant.calibrators import (
    CalibratorOptions,
    calibrator_names,
    entropy_kl,
    entropy_threshold,
    get_calibrator,
    register_calibrator,
)
from edgesdk.quant.equalize import Equalization, equalize
from edgesdk.quant.qdq import QdqPlan, apply_qdq, plan_qdq
from edgesdk.quant.select import Selection, select_images
from edgesdk.quant.sensitivity import Sensitivity, keep_fp_for, rank_sensitivity
from edgesdk.quant.stats import ActivationStats, ImageBatches, TensorStats, calibration_tensors, collect_stats
from edgesdk.quant.summary import TensorSummary

__all__ = [
    "DEFAULT_TRT",
    "TRT_TARGETS",
    "ActivationStats",
    "CalibrationResult",
    "CalibratorOptions",
    "Equalization",
    "ImageBatches",
    "Prepared",
    "QdqPlan",
    "Selection",
    "Sensitivity",
    "TensorStats",
    "TensorSummary",
    "apply_qdq",
    "calibrate",
    "calibration_tensors",
    "calibrator_names",
    "collect_stats",
    "entropy_kl",
    "entropy_threshold",
    "equalize",
    "finish",
    "get_calibrator",
    "keep_fp_for",
    "load_qdq",
    "make_cache",
    "plan_qdq",
    "prepare",
    "qdq_model",
    "rank_sensitivity",
    "read_thresholds",
    "register_calibrator",
    "select_images",
    "trt_code",
    "write_outputs",
]
