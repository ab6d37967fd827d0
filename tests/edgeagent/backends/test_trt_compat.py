"""TensorRT version switches and build planning, for 8.5, 8.6 and 10.3 (no TensorRT needed)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from edgeagent.backends.base import BackendError
from edgeagent.backends.trt_compat import (
    BuildOptions,
    api_for,
    dims_to_tuple,
    int8_source,
    numpy_dtype,
    parse_build_options,
    parse_trt_version,
    pick_profile_shape,
    plan_build,
)

JP51, JP60, JP61 = "8.5.2.2", "8.6.2.3", "10.3.0.30"


@pytest.mark.parametrize(
    ("version", "explicit_batch", "queries", "deprecated", "cache"),
    [
        (JP51, True, True, False, 8502),
        ("8.6.1.6", True, True, False, 8601),
        (JP60, True, True, False, 8602),
        ("10.0.1.6", False, True, False, 100001),
        (JP61, False, True, True, 100300),
        ("10.13.0.35", False, False, True, 101300),
    ],
)
def test_api_switches_per_version(
    version: str, explicit_batch: bool, queries: bool, deprecated: bool, cache: int
) -> None:
    api = api_for(version)
    assert api.explicit_batch_flag is explicit_batch
    assert api.platform_queries is queries
    assert api.implicit_int8_deprecated is deprecated
    assert api.cache_version == cache
    assert api.label == ".".join(version.split(".")[:3])


@pytest.mark.parametrize(
    ("version", "match"), [("8.4.3.1", "too old"), ("7.1.3", "too old"), ("11.4.0", "not supported")]
)
def test_unsupported_versions_are_refused(version: str, match: str) -> None:
    with pytest.raises(BackendError, match=match):
        api_for(version)


def test_parse_trt_version() -> None:
    assert parse_trt_version("10.3.0.30") == (10, 3, 0)
    assert parse_trt_version("8.6") == (8, 6, 0)
    assert parse_trt_version((8, 5)) == (8, 5, 0)
    with pytest.raises(BackendError):
        parse_trt_version("ten")


def test_build_options_defaults_and_checks() -> None:
    opts = parse_build_options({})
    assert opts == BuildOptions("fp16", 1024, None, True, None)
    assert opts.workspace_bytes == 1024 << 20
    full = parse_build_options(
        {
            "precision": "int8",
            "workspace_mb": 256,
            "dla_core": 1,
            "gpu_fallback": False,
            "input_shape": [1, 3, 640, 640],
        }
    )
    assert full == BuildOptions("int8", 256, 1, False, (1, 3, 640, 640))


@pytest.mark.parametrize(
    "bad",
    [
        {"precision": "int4"},
        {"workspace_mb": 8},
        {"workspace_mb": "1024"},
        {"workspace_mb": True},
        {"dla_core": -1},
        {"gpu_fallback": "yes"},
        {"input_shape": [1, 3, 640]},
        {"input_shape": [1, 3, -1, 640]},
        {"precission": "fp16"},
    ],
)
def test_build_options_rejects(bad: Dict[str, Any]) -> None:
    with pytest.raises(BackendError):
        parse_build_options(bad)


def _opts(**kw: Any) -> BuildOptions:
    return parse_build_options(kw)


@pytest.mark.parametrize("version", [JP51, JP60, JP61])
def test_plan_fp32_fp16(version: str) -> None:
    api = api_for(version)
    assert plan_build(api, _opts(precision="fp32"), has_qdq=False, has_calibrator=False).flags == ()
    plan = plan_build(api, _opts(precision="fp16"), has_qdq=False, has_calibrator=False, fast_fp16=True)
    assert plan.flags == ("FP16",) and not plan.use_calibrator


def test_plan_int8_calibrated_vs_qdq() -> None:
    api = api_for(JP51)
    calibrated = plan_build(api, _opts(precision="int8"), has_qdq=False, has_calibrator=True, fast_int8=True)
    assert calibrated.flags == ("INT8", "FP16") and calibrated.use_calibrator and calibrated.notes == ()
    qdq = plan_build(api, _opts(precision="int8"), has_qdq=True, has_calibrator=False, fast_int8=True)
    assert qdq.flags == ("INT8", "FP16") and not qdq.use_calibrator
    both = plan_build(api, _opts(precision="int8"), has_qdq=True, has_calibrator=True, fast_int8=True)
    assert not both.use_calibrator and "not used" in both.notes[0]


def test_plan_int8_on_trt10_notes_deprecation() -> None:
    plan = plan_build(
        api_for(JP61), _opts(precision="int8"), has_qdq=False, has_calibrator=True, fast_int8=True
    )
    assert plan.use_calibrator and any("deprecated since 10.1" in n for n in plan.notes)


def test_plan_skips_platform_queries_from_10_5() -> None:
    plan = plan_build(api_for("10.13.0"), _opts(precision="fp16"), has_qdq=False, has_calibrator=False)
    assert plan.flags == ("FP16",) and "not queried" in plan.notes[0]


@pytest.mark.parametrize(
    ("kw", "plan_kw", "match"),
    [
        (dict(precision="int8"), dict(has_qdq=False, has_calibrator=False), "int8 without calibration"),
        (dict(precision="fp16"), dict(has_qdq=True, has_calibrator=False), "Q/DQ"),
        (dict(precision="int8"), dict(has_qdq=False, has_calibrator=True, fast_int8=False), "no fast int8"),
        (dict(precision="fp16"), dict(has_qdq=False, has_calibrator=False, fast_fp16=False), "no fast fp16"),
        (dict(precision="fp32", dla_core=0), dict(has_qdq=False, has_calibrator=False), "DLA runs fp16"),
        (
            dict(precision="fp16", dla_core=2),
            dict(has_qdq=False, has_calibrator=False, dla_cores=2),
            "cores 0..1",
        ),
        (
            dict(precision="fp16", dla_core=0),
            dict(has_qdq=False, has_calibrator=False, dla_cores=0),
            "no DLA",
        ),
    ],
)
def test_plan_refuses_impossible_builds(kw: Dict[str, Any], plan_kw: Dict[str, Any], match: str) -> None:
    with pytest.raises(BackendError, match=match):
        plan_build(api_for(JP51), _opts(**kw), **plan_kw)


def test_plan_dla_with_and_without_fallback() -> None:
    api = api_for(JP60)
    plan = plan_build(
        api, _opts(precision="fp16", dla_core=1), has_qdq=False, has_calibrator=False, dla_cores=2
    )
    assert plan.flags == ("FP16", "GPU_FALLBACK")
    strict = plan_build(
        api, _opts(precision="fp16", dla_core=0, gpu_fallback=False), has_qdq=False, has_calibrator=False
    )
    assert strict.flags == ("FP16",) and any("fallback off" in n for n in strict.notes)


def test_dtypes_and_dims() -> None:
    assert numpy_dtype("FLOAT") == "float32" and numpy_dtype("HALF") == "float16"
    assert numpy_dtype("INT64") == "int64" and numpy_dtype("BOOL") == "bool"
    with pytest.raises(BackendError, match="FP8"):
        numpy_dtype("FP8")
    assert dims_to_tuple([1, 3, 640, 640]) == (1, 3, 640, 640)


def test_pick_profile_shape() -> None:
    assert pick_profile_shape("x", (1, 3, 8, 8), []) == (1, 3, 8, 8)
    profile = [(1, 3, 320, 320), (4, 3, 640, 640), (8, 3, 640, 640)]
    assert pick_profile_shape("x", (-1, 3, -1, -1), profile) == (4, 3, 640, 640)
    with pytest.raises(BackendError, match="no optimisation profile"):
        pick_profile_shape("x", (-1, 3, 8, 8), [])


@pytest.mark.parametrize(
    ("version", "qdq", "images", "route"),
    [
        (JP51, True, True, "calibrator"),  # 8.5/8.6: the host cache (or on-device calibration)
        (JP60, True, True, "calibrator"),
        (JP60, True, False, "qdq"),  # nothing to calibrate on: the Q/DQ model
        (JP61, True, True, "qdq"),  # 10.3: calibrators are deprecated, the Q/DQ model is the path
        ("10.0.1.6", True, True, "calibrator"),
        (JP61, False, True, "calibrator"),  # an older bundle without a Q/DQ model still builds
        (JP51, False, False, "none"),
    ],
)
def test_int8_route_per_version(version: str, qdq: bool, images: bool, route: str) -> None:
    assert int8_source(api_for(version), qdq, images) == route
