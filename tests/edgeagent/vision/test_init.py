"""The package surface: re-exports, and no OpenCV import for NMS/decoders alone."""

from __future__ import annotations

import subprocess
import sys

import edgeagent.vision as vision


def test_all_names_resolve() -> None:
    assert len(set(vision.__all__)) == len(vision.__all__)
    for name in vision.__all__:
        assert getattr(vision, name) is not None
    assert {"preprocess", "postprocess", "nms", "batched_nms", "decode", "Transform", "COCO80"} <= set(
        vision.__all__
    )


def test_importing_the_package_does_not_load_cv2() -> None:
    code = "import sys, edgeagent.vision; sys.exit(1 if 'cv2' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
