"""device/ must run on JetPack 5's Python 3.8.

Statically: vermin finds no newer syntax or library use (as the before-stop hook runs it).
For real: where a Python 3.8 with numpy and OpenCV exists (``.ci/run`` prepares pyenv's), the
agent zipapp imports every module, reports its info, and runs a model end to end.
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
from pathlib import Path

import pytest

import edgeagent
from edgesdk import settings
from edgesdk.agentpkg import write_agent_zip
from tests.edgesdk.deploy._python38 import python38


def test_device_is_python38_compatible() -> None:
    vermin = shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin not installed (pip install -e '.[test]')")
    out = subprocess.run(
        [vermin, "-q", "--no-tips", "--violations", "-t=3.8-", str(settings.REPO_ROOT / "device")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.fixture(scope="module")
def py38() -> str:
    exe = python38()
    if exe is None:
        pytest.skip("no Python 3.8 on this machine (pyenv install 3.8, or apt python3.8)")
    probe = subprocess.run([exe, "-c", "import numpy, cv2"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"{exe} lacks numpy/OpenCV: {exe} -m pip install numpy opencv-python-headless")
    return exe


def _agent(tmp_path: Path, py38: str, *args: str) -> list[dict]:
    pyz = tmp_path / "edgeagent.pyz"
    if not pyz.exists():
        write_agent_zip(pyz)
    out = subprocess.run([py38, str(pyz), *args, "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_every_agent_module_imports_on_python38(py38: str, tmp_path: Path) -> None:
    modules = sorted(
        m.name
        for m in pkgutil.walk_packages(edgeagent.__path__, "edgeagent.")
        if not m.name.endswith("__main__")
    )
    pyz = tmp_path / "edgeagent.pyz"
    write_agent_zip(pyz)
    code = "import importlib, sys; sys.path.insert(0, sys.argv[1]); [importlib.import_module(m) for m in sys.argv[2:]]"
    out = subprocess.run([py38, "-c", code, str(pyz), *modules], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info = _agent(tmp_path, py38, "info")[-1]["data"]
    assert info["python"].startswith("3.8.")


def test_agent_builds_and_runs_a_model_on_python38(
    py38: str, tmp_path: Path, models_dir: Path, data_dir: Path
) -> None:
    if subprocess.run([py38, "-c", "import onnxruntime"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"{py38} lacks onnxruntime: {py38} -m pip install 'onnxruntime<1.20'")
    from edgesdk.bundle import write_bundle
    from edgesdk.recipe import load_recipe, override

    recipe = override(
        load_recipe("yunet"), {"model.path": "yunet_n/yunet_n_320_320.onnx", "input.shape": [1, 3, 320, 320]}
    )
    bundle = write_bundle(
        recipe, [("model", models_dir / "yunet_n" / "yunet_n_320_320.onnx")], tmp_path / "b"
    )
    home = str(tmp_path / "home")
    built = _agent(tmp_path, py38, "build", str(bundle.root), "--home", home)[-1]["data"]
    assert built["backend"] == "ort" and built["cached"] is False
    # deployments come from the store: register this bundle as the current one
    from edgeagent.store import Store

    store = Store(home)
    store.ensure()
    (Path(home) / "bundles").mkdir(exist_ok=True)
    shutil.copytree(bundle.root, Path(home) / "bundles" / bundle.bundle_id)
    store.activate("yunet", bundle.bundle_id)
    gif = str(data_dir / "videos" / "head-pose-face-detection-female.gif")
    events = _agent(tmp_path, py38, "run", "yunet", "--source", gif, "--home", home)
    result = events[-1]["data"]
    assert result["frames_out"] == 23 and result["stop_reason"] == "end"
