"""Every module imports without the optional extras, and without heavy runtime packages.

STYLE §4: no module under ``edgesdk`` imports tensorrt, pycuda, onnxruntime or cv2 at import
time; torch and matplotlib are optional extras. ``device/`` may import numpy and cv2 (the
agent needs them) but never tensorrt/pycuda at import time.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import edgeagent
import edgesdk

BLOCKED = ["torch", "tensorrt", "pycuda", "matplotlib"]
HOST_LAZY = ["onnxruntime", "cv2", "tensorrt", "pycuda", "torch", "paramiko", "matplotlib"]


def _modules(package) -> list[str]:
    names = pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    return sorted(m.name for m in names if not m.name.endswith("__main__"))  # __main__ runs the CLI


_PROBE = """
import importlib, json, sys
blocked = {blocked!r}
for name in blocked:
    sys.modules[name] = None  # `import name` now raises ImportError, as in a bare venv
failed = {{}}
for mod in {modules!r}:
    try:
        importlib.import_module(mod)
    except Exception as err:
        failed[mod] = repr(err)
loaded = sorted(k for k in sys.modules if sys.modules[k] is not None)
print(json.dumps({{"failed": failed, "loaded": loaded}}))
"""


def _probe(modules: list[str]) -> dict:
    code = _PROBE.format(blocked=BLOCKED, modules=modules)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_without_optional_extras() -> None:
    mods = _modules(edgesdk) + _modules(edgeagent)
    assert len(mods) > 5
    result = _probe(mods)
    assert result["failed"] == {}


def test_host_modules_do_not_import_heavy_runtimes() -> None:
    mods = [m for m in _modules(edgesdk)]
    result = _probe(mods)
    heavy = sorted({name.split(".")[0] for name in result["loaded"]} & set(HOST_LAZY))
    assert heavy == [], f"imported at module import time: {heavy}"
