"""What this machine can run: versions, backends, Jetson or not (for ``edgeagent info``)."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, Optional

from edgeagent import __version__


def _version(module: str) -> Optional[str]:
    try:
        mod = __import__(module)
    except Exception:  # a broken install must not break `info`
        return None
    return str(getattr(mod, "__version__", "unknown"))


def opencv_gstreamer() -> Optional[bool]:
    """Whether OpenCV was built with GStreamer (pip wheels are not; JetPack's OpenCV is)."""
    try:
        import cv2
    except ImportError:
        return None
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def machine_info() -> Dict[str, Any]:
    """Facts about this machine the host shows and the engine fingerprint uses."""
    from edgeagent.backends.ort import ort_version

    trt = _version("tensorrt")
    ort = ort_version()
    providers = []
    if ort is not None:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    return {
        "agent_version": __version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "arch": platform.machine(),
        "system": platform.system(),
        "jetson": os.path.exists("/etc/nv_tegra_release"),
        "numpy": _version("numpy"),
        "opencv": _version("cv2"),
        "opencv_gstreamer": opencv_gstreamer(),
        "tensorrt": trt,
        "pycuda": _version("pycuda"),
        "onnxruntime": ort,
        "onnxruntime_providers": providers,
        "backends": [name for name, ok in (("trt", trt is not None), ("ort", ort is not None)) if ok],
    }
