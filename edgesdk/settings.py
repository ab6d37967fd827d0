"""Every ``EDGESDK_*`` environment variable, read in one place.

| variable | meaning | default |
|---|---|---|
| ``EDGESDK_DEBUG`` | show tracebacks for user errors | off |
| ``EDGESDK_MODEL_DIR`` | where recipes' relative model paths are resolved | ``./models`` |
| ``EDGESDK_RECIPE_DIR`` | extra folder searched for recipes by name (before the built-in ones) | unset |
| ``EDGESDK_TEST_DATA`` | shared models/data tree for tests and benchmarks | ``../shared`` from the repo root |
| ``EDGESDK_CONFIG`` | the device inventory file | ``~/.config/edgesdk/devices.yaml`` |
| ``EDGESDK_WORK_DIR`` | where deploys keep exported models, bundles and the agent zipapp | ``./out`` |
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

REPO_ROOT = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable.

    Accepts 1/true/yes/on and 0/false/no/off (any case); unset gives ``default``.

    Raises:
        ValueError: for any other value, naming the variable.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int) -> int:
    """Read an integer environment variable; unset or empty gives ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def env_path(name: str, default: Path | None) -> Path | None:
    """Read a path environment variable (``~`` expanded); unset or empty gives ``default``."""
    raw = os.environ.get(name, "").strip()
    return Path(raw).expanduser() if raw else default


def debug() -> bool:
    """Whether tracebacks are shown for user errors (``EDGESDK_DEBUG``)."""
    return env_flag("EDGESDK_DEBUG")


def model_dir() -> Path:
    """Folder that recipes' relative model paths are resolved against (``EDGESDK_MODEL_DIR``)."""
    path = env_path("EDGESDK_MODEL_DIR", Path("models"))
    assert path is not None
    return path


def recipe_dirs() -> list[Path]:
    """Folders searched, in order, when a recipe is named instead of given as a path."""
    dirs: list[Path] = []
    extra = env_path("EDGESDK_RECIPE_DIR", None)
    if extra is not None:
        dirs.append(extra)
    dirs.append(REPO_ROOT / "recipes")
    dirs.append(Path(__file__).resolve().parent / "_recipes")  # wheels ship them here
    return dirs


def test_data() -> Path:
    """The shared models/data tree (``EDGESDK_TEST_DATA``, default ``../shared`` from the repo root)."""
    path = env_path("EDGESDK_TEST_DATA", REPO_ROOT.parent / "shared")
    assert path is not None
    return path


def config_file() -> Path:
    """The device inventory file (``EDGESDK_CONFIG``)."""
    base = env_path("XDG_CONFIG_HOME", Path.home() / ".config")
    assert base is not None
    path = env_path("EDGESDK_CONFIG", base / "edgesdk" / "devices.yaml")
    assert path is not None
    return path


def work_dir() -> Path:
    """Host working folder for exports, bundles and the agent zipapp (``EDGESDK_WORK_DIR``)."""
    path = env_path("EDGESDK_WORK_DIR", Path("out"))
    assert path is not None
    return path
