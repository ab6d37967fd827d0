"""L4T → JetPack and SoC tables."""

from __future__ import annotations

import pytest

from edgesdk.deploy.jetson import SOC_GPU, cuda_cores, jetpack_for, normalize_l4t


@pytest.mark.parametrize(
    ("l4t", "expected"),
    [
        ("32.7.1", ("4.6.1", True)),
        ("32.7.2", ("4.6.2", True)),
        ("35.3.1", ("5.1.1", True)),
        ("35.4.1", ("5.1.2", True)),
        ("36.3", ("6.0", True)),
        ("36.4.3", ("6.2", True)),
        ("38.2.1", ("7.0", True)),
        ("38.4.0", ("7.1", True)),
        ("36.9.9", ("6.x", False)),
        ("35.99.0", ("5.x", False)),
        ("99.1.0", (None, False)),
    ],
)
def test_jetpack_for(l4t: str, expected: tuple[str | None, bool]) -> None:
    assert jetpack_for(l4t) == expected


def test_normalize_l4t() -> None:
    assert normalize_l4t("35.3") == "35.3.0" and normalize_l4t(" 36.04.3 ") == "36.4.3"
    for bad in ("R35.3.1", "35..1", "1.2.3.4", ""):
        with pytest.raises(ValueError):
            normalize_l4t(bad)


def test_orin_cores() -> None:
    assert SOC_GPU["tegra234"] == ("Ampere", "8.7")
    assert cuda_cores("8.7", 16) == 2048  # AGX Orin 64GB: 16 SMs, 2048 CUDA cores
    assert cuda_cores("7.2", 8) == 512  # AGX Xavier: 8 SMs, 512 CUDA cores
    assert cuda_cores("1.0", 4) is None
