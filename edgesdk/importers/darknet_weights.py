"""Reading darknet ``.weights`` files: a small header, then little-endian float32 values.

Layout (darknet ``src/parser.c::load_weights``): int32 major, minor, revision; then
``seen`` (images trained on) as int64 when ``major * 10 + minor >= 2`` (20-byte header),
else as int32 (16-byte header). Then, per convolution in cfg order: ``filters`` biases
(BN beta), with BN also gamma, running mean, running variance (``filters`` each), then
the kernel ``[filters, in_channels / groups, size, size]``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesdk.errors import ArtifactNotFound, ModelFormatError


@dataclass(frozen=True)
class WeightsHeader:
    """The ``.weights`` header; ``size`` is its length in bytes (16 or 20)."""

    major: int
    minor: int
    revision: int
    seen: int
    size: int


def read_header(data: bytes, source: str) -> WeightsHeader:
    """Parse the header at the start of ``data``.

    Raises:
        ModelFormatError: the data is shorter than a header, or uses the transposed layout.
    """
    if len(data) < 12:
        raise ModelFormatError(f"{source}: {len(data)} bytes is too short for a darknet .weights header")
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    if major > 1000 or minor > 1000 or major < 0 or minor < 0:
        raise ModelFormatError(
            f"{source}: header version {major}.{minor} is not a darknet .weights file this importer reads"
        )
    wide = major * 10 + minor >= 2
    size = 20 if wide else 16
    if len(data) < size:
        raise ModelFormatError(f"{source}: truncated inside its {size}-byte header ({len(data)} bytes)")
    (seen,) = struct.unpack_from("<q" if wide else "<i", data, 12)
    return WeightsHeader(major, minor, revision, seen, size)


class WeightsReader:
    """Hands out consecutive float32 slices of a ``.weights`` file.

    Args:
        path: the ``.weights`` file.
        expected: how many float32 values the cfg needs after the header.
        cfg_name: how messages name the cfg.

    Raises:
        ArtifactNotFound: the file does not exist.
        ModelFormatError: it is truncated or has extra bytes; the message gives both counts.
    """

    def __init__(self, path: Path, expected: int, cfg_name: str) -> None:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(f"darknet weights {path} do not exist") from None
        except OSError as err:
            raise ModelFormatError(f"cannot read darknet weights {path}: {err}") from err
        self.path = path
        self.header = read_header(data, str(path))
        body = len(data) - self.header.size
        have = body // 4
        if body % 4 or have != expected:
            problem = "is truncated" if have < expected else "has extra bytes"
            raise ModelFormatError(
                f"{path} {problem}: the cfg {cfg_name} needs {expected} float32 weights after the "
                f"{self.header.size}-byte header, the file has {body / 4:g} "
                "(are the cfg and the weights from the same model?)"
            )
        self._values = np.frombuffer(data, dtype="<f4", offset=self.header.size).astype(np.float32)
        self._offset = 0

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` float32 values (a read-only 1-D view)."""
        if self._offset + count > self._values.size:
            raise ModelFormatError(f"{self.path}: read past the end of the weights (internal count mismatch)")
        out = self._values[self._offset : self._offset + count]
        self._offset += count
        return out

    @property
    def remaining(self) -> int:
        """Values not yet taken."""
        return int(self._values.size - self._offset)
