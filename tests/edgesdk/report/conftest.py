"""A REAL benchmark report: yunet on a real video through the real pipeline (onnxruntime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeagent.backends.ort import OrtBackend
from edgeagent.bench import bench
from edgeagent.sources import open_source
from edgesdk.recipe import load_recipe


@pytest.fixture(scope="session")
def real_report(models_dir: Path, data_dir: Path) -> dict[str, Any]:
    recipe = load_recipe("yunet").resolved()
    backend = OrtBackend(str(models_dir / "yunet_n" / "yunet_n_640_640.onnx"))
    source = open_source(str(data_dir / "videos" / "head-pose-face-detection-female.gif"))
    report = bench(backend, recipe, source, warmup=2, infer_iterations=10)
    report["precision"] = "fp32"
    return report
