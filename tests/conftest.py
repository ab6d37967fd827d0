"""Fixtures shared by the whole suite.

Real models and images come from the shared tree named by ``EDGESDK_TEST_DATA``
(default ``../shared`` beside the repo). Tests that need them skip with a clear reason
where they are absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk import settings


def _shared() -> Path:
    return settings.test_data()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared test-data root (models/ and data/)."""
    root = _shared()
    if not (root / "models").is_dir() or not (root / "data").is_dir():
        pytest.skip(
            f"shared models/data not found at {root}; "
            "set EDGESDK_TEST_DATA to the folder holding models/ and data/"
        )
    return root


@pytest.fixture(scope="session")
def models_dir(shared_dir: Path) -> Path:
    """``<shared>/models``: the real pretrained models, laid out as the recipes expect."""
    return shared_dir / "models"


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    """``<shared>/data``: labelled images, sample images, videos, Jetson samples."""
    return shared_dir / "data"


@pytest.fixture(scope="session")
def sample_images(data_dir: Path) -> dict[str, Path]:
    """bus.jpg and zidane.jpg by stem."""
    return {p.stem: p for p in sorted((data_dir / "sample_images").glob("*.jpg"))}


@pytest.fixture()
def model_dir_env(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point EDGESDK_MODEL_DIR at the shared models for the duration of a test."""
    monkeypatch.setenv("EDGESDK_MODEL_DIR", str(models_dir))
    return models_dir
