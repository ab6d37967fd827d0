from __future__ import annotations

import pytest

from edgesdk import settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("", False),
        ("Off", False),
    ],
)
def test_env_flag_values(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("EDGESDK_X", raw)
    assert settings.env_flag("EDGESDK_X") is expected


def test_env_flag_unset_uses_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESDK_X", raising=False)
    assert settings.env_flag("EDGESDK_X") is False
    assert settings.env_flag("EDGESDK_X", default=True) is True


def test_env_flag_rejects_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESDK_X", "maybe")
    with pytest.raises(ValueError, match="EDGESDK_X"):
        settings.env_flag("EDGESDK_X")


def test_env_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESDK_N", " 42 ")
    assert settings.env_int("EDGESDK_N", 1) == 42
    monkeypatch.setenv("EDGESDK_N", "x")
    with pytest.raises(ValueError, match="EDGESDK_N"):
        settings.env_int("EDGESDK_N", 1)


def test_model_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("EDGESDK_MODEL_DIR", str(tmp_path))
    assert settings.model_dir() == tmp_path
    monkeypatch.delenv("EDGESDK_MODEL_DIR")
    assert str(settings.model_dir()) == "models"
