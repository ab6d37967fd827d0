"""Versions probe, sent to the DEVICE's Python on stdin (``python3 -``); prints one JSON object.

Runs on Python 3.8 with the standard library only; every optional module may be missing,
broken or slow to import, and the probe still prints its JSON. Nothing here runs on import
(``edgesdk.deploy.facts`` reads this file's text). Parsing the output happens on the host:
:func:`edgesdk.deploy.facts.parse_probe`.
"""

import ctypes
import glob
import json
import os
import platform
import re
import sys

PROBE_VERSION = 1


def _module_version(name):
    try:
        module = __import__(name)
    except Exception:  # missing or broken: both mean "not usable"
        return None
    return str(getattr(module, "__version__", "unknown"))


def _cdll(names):
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except (OSError, UnicodeError):
        return None


def cuda_version():
    """CUDA toolkit/runtime version: version.json (11+), version.txt (10.x), else libcudart."""
    text = _read("/usr/local/cuda/version.json")
    if text:
        try:
            return json.loads(text)["cuda"]["version"]
        except (ValueError, KeyError, TypeError):
            pass
    text = _read("/usr/local/cuda/version.txt")
    match = re.search(r"CUDA Version\s+([\d.]+)", text or "")
    if match:
        return match.group(1)
    lib = _cdll(["libcudart.so", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so.10.2"])
    value = ctypes.c_int(0)
    if lib is not None and lib.cudaRuntimeGetVersion(ctypes.byref(value)) == 0 and value.value:
        return f"{value.value // 1000}.{(value.value % 1000) // 10}"
    return None


def cudnn_version():
    """cuDNN version from its header, else from libcudnn's cudnnGetVersion()."""
    for header in glob.glob("/usr/include/cudnn_version*.h") + glob.glob("/usr/include/*/cudnn_version*.h"):
        text = _read(header) or ""
        parts = [re.search(rf"#define CUDNN_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCHLEVEL")]
        if all(parts):
            return ".".join(m.group(1) for m in parts)
    lib = _cdll(["libcudnn.so", "libcudnn.so.9", "libcudnn.so.8"])
    if lib is None:
        return None
    lib.cudnnGetVersion.restype = ctypes.c_size_t
    value = int(lib.cudnnGetVersion())
    if value >= 90000:  # cuDNN 9: major*10000 + minor*100 + patch
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}"


def tensorrt_version():
    """(version, python binding importable): the tensorrt module, else libnvinfer's version."""
    version = _module_version("tensorrt")
    if version is not None:
        return version, True
    lib = _cdll(["libnvinfer.so", "libnvinfer.so.10", "libnvinfer.so.8"])
    if lib is None:
        return None, False
    value = int(lib.getInferLibVersion())
    if value >= 10000:  # TensorRT 10: major*10000 + minor*100 + patch
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}", False
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}", False


def opencv():
    """(version, the raw 'GStreamer:' line of the build information)."""
    try:
        import cv2
    except Exception:
        return None, None
    line = None
    for text in cv2.getBuildInformation().splitlines():
        if text.strip().startswith("GStreamer"):
            line = text.strip()
            break
    return str(cv2.__version__), line


def gpus():
    """Every CUDA device through the driver API: name, compute capability, SM count."""
    lib = _cdll(["libcuda.so.1", "libcuda.so"])
    if lib is None or lib.cuInit(0) != 0:
        return []
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    found = []
    for index in range(count.value):
        device = ctypes.c_int(0)
        if lib.cuDeviceGet(ctypes.byref(device), index) != 0:
            continue
        name = ctypes.create_string_buffer(256)
        lib.cuDeviceGetName(name, 256, device)
        attrs = {}
        for key, code in (("major", 75), ("minor", 76), ("sm_count", 16)):
            value = ctypes.c_int(0)
            lib.cuDeviceGetAttribute(ctypes.byref(value), code, device)
            attrs[key] = value.value
        found.append(
            {
                "name": name.value.decode("utf-8", "replace"),
                "compute_capability": f"{attrs['major']}.{attrs['minor']}",
                "sm_count": attrs["sm_count"],
            }
        )
    return found


def dla_cores():
    """Number of NVDLA engines, from their device nodes (JetPack 4/5) or sysfs (JetPack 6)."""
    patterns = [
        "/dev/nvhost-nvdla*",
        "/sys/devices/platform/*.nvdla*",
        "/sys/devices/platform/*/*.nvdla*",
        "/sys/devices/*.nvdla*",
        "/sys/devices/*/*.nvdla*",
    ]
    indices = set()
    for pattern in patterns:
        for path in glob.glob(pattern):
            match = re.search(r"nvdla(\d+)$", os.path.basename(path))
            if match:
                indices.add(int(match.group(1)))
    return len(indices)


def probe():
    trt, trt_python = tensorrt_version()
    cv_version, gstreamer_line = opencv()
    try:
        import importlib.util

        pycuda = importlib.util.find_spec("pycuda") is not None
    except Exception:
        pycuda = False
    return {
        "probe": PROBE_VERSION,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": _module_version("numpy"),
        "onnxruntime": _module_version("onnxruntime"),
        "tensorrt": trt,
        "tensorrt_python": trt_python,
        "pycuda": pycuda,
        "cuda": cuda_version(),
        "cudnn": cudnn_version(),
        "opencv": cv_version,
        "opencv_gstreamer_line": gstreamer_line,
        "gpus": gpus(),
        "dla_cores": dla_cores(),
    }


def main():
    sys.stdout.write(json.dumps(probe(), sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
