"""Reference tables for Jetson facts: L4T → JetPack, SoC → GPU architecture, CUDA cores per SM.

Sources: NVIDIA's JetPack archive and the per-release Jetson Linux pages ("L4T 32.7.2 is
included as part of JetPack 4.6.2", "JetPack 7.0 with Jetson Linux 38.2/38.2.1", "JetPack
7.1 with Jetson Linux 38.4"), and the JetPack release tables. A release missing from the
table is reported by its family (R35 → "5.x") and flagged as not exact.
"""

from __future__ import annotations

# L4T release (major.minor.patch) → JetPack version.
L4T_TO_JETPACK: dict[str, str] = {
    "32.4.3": "4.4",
    "32.4.4": "4.4.1",
    "32.5.0": "4.5",
    "32.5.1": "4.5.1",
    "32.5.2": "4.5.1",  # security update of 32.5.1, same JetPack
    "32.6.1": "4.6",
    "32.7.1": "4.6.1",
    "32.7.2": "4.6.2",
    "32.7.3": "4.6.3",
    "32.7.4": "4.6.4",
    "32.7.5": "4.6.5",
    "32.7.6": "4.6.6",
    "34.1.0": "5.0 DP",
    "34.1.1": "5.0.1 DP",
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "35.6.2": "5.1.5",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2.0": "7.0",
    "38.2.1": "7.0",
    "38.4.0": "7.1",
}

# L4T major release → JetPack family, for releases newer than (or missing from) the table.
L4T_FAMILY: dict[int, str] = {
    28: "3.x",
    31: "4.x DP",
    32: "4.x",
    34: "5.x DP",
    35: "5.x",
    36: "6.x",
    38: "7.x",
    39: "7.x",
}

# SoC (device-tree "nvidia,tegraNNN") → GPU architecture and CUDA compute capability.
SOC_GPU: dict[str, tuple[str, str]] = {
    "tegra210": ("Maxwell", "5.3"),  # Jetson Nano, TX1
    "tegra186": ("Pascal", "6.2"),  # Jetson TX2 family
    "tegra194": ("Volta", "7.2"),  # Jetson Xavier NX, AGX Xavier
    "tegra234": ("Ampere", "8.7"),  # Jetson Orin Nano, Orin NX, AGX Orin
    "tegra264": ("Blackwell", "11.0"),  # Jetson Thor (sm_110 in CUDA 13; sm_101 before)
}

# Compute capability → CUDA cores per streaming multiprocessor.
CORES_PER_SM: dict[str, int] = {
    "5.3": 128,
    "6.2": 128,
    "7.2": 64,
    "7.5": 64,
    "8.0": 64,
    "8.6": 128,
    "8.7": 128,
    "8.9": 128,
    "9.0": 128,
    "10.0": 128,
    "10.1": 128,
    "11.0": 128,
    "12.0": 128,
}


def normalize_l4t(version: str) -> str:
    """``"35.3"`` → ``"35.3.0"``; three numeric parts are returned unchanged.

    Raises:
        ValueError: not a dotted version of numbers.
    """
    parts = version.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{version!r} is not an L4T version like 35.3.1")
    parts += ["0"] * (3 - len(parts))
    return ".".join(str(int(p)) for p in parts)


def jetpack_for(l4t: str) -> tuple[str | None, bool]:
    """The JetPack version of an L4T release, and whether that is an exact table match.

    Returns:
        ``("5.1.1", True)`` for a release in the table, ``("6.x", False)`` for an unknown
        release of a known family, ``(None, False)`` otherwise.
    """
    version = normalize_l4t(l4t)
    if version in L4T_TO_JETPACK:
        return L4T_TO_JETPACK[version], True
    return L4T_FAMILY.get(int(version.split(".")[0])), False


def cuda_cores(compute_capability: str, sm_count: int) -> int | None:
    """CUDA cores of a GPU (None when the architecture is not in the table)."""
    per_sm = CORES_PER_SM.get(compute_capability)
    return per_sm * sm_count if per_sm is not None else None
