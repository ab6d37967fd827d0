"""The TensorRT backend type-checks against the real TensorRT Python API (tensorrt-stubs, 10.13).

``tools/trt_stubs.sh`` downloads the stubs with ``--no-deps`` and repairs them; mypy then
checks the TensorRT modules with ``MYPYPATH`` pointing at them. A probe file proves the stubs
are in effect (an API removed in TensorRT 10 must be reported), so a silently missing stub
cannot make this test pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgesdk import settings

ROOT = settings.REPO_ROOT
TRT_MODULES = sorted(str(p) for p in (ROOT / "device" / "edgeagent" / "backends").glob("trt*.py"))
PROBE = """\
import tensorrt as trt

builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
config = builder.create_builder_config()
config.max_workspace_size = 1 << 30  # removed in TensorRT 10: set_memory_pool_limit replaces it
fast: str = builder.platform_has_fast_fp16  # a bool: proves `bool` is not shadowed by DataType
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("trt-stubs")
    out = subprocess.run(
        ["bash", str(ROOT / "tools" / "trt_stubs.sh"), str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode == 3:
        pytest.skip(f"tensorrt-stubs cannot be downloaded here: {out.stderr.strip()[-300:]}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (dest / "tensorrt" / "__init__.pyi").is_file()
    return dest


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module: the 10,000-line stubs are analysed once."""
    return tmp_path_factory.mktemp("mypy-cache")


def _mypy(stubs: Path, cache: Path, *files: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MYPYPATH=str(stubs))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-error-summary", *files],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
        env=env,
    )


def test_repaired_stubs_parse(stubs: Path) -> None:
    import ast

    for stub in stubs.rglob("*.pyi"):
        ast.parse(stub.read_text(encoding="utf-8"), filename=str(stub))
        assert stub.read_text(encoding="utf-8").startswith("# mypy: ignore-errors")


def test_stubs_are_in_effect(stubs: Path, mypy_cache: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    out = _mypy(stubs, mypy_cache, str(probe))
    assert '"IBuilderConfig" has no attribute "max_workspace_size"' in out.stdout, out.stdout + out.stderr
    assert 'expression has type "bool", variable has type "str"' in out.stdout, out.stdout
    assert out.stdout.count("error:") == 2, out.stdout


def test_trt_backend_type_checks_against_tensorrt_10_api(stubs: Path, mypy_cache: Path) -> None:
    assert len(TRT_MODULES) >= 4, TRT_MODULES
    out = _mypy(stubs, mypy_cache, *TRT_MODULES)
    assert out.returncode == 0, out.stdout + out.stderr
