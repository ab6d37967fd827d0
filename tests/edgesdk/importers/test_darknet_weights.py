"""Reading darknet .weights headers and bodies."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from edgesdk.errors import ArtifactNotFound, ModelFormatError
from edgesdk.importers.darknet_weights import WeightsReader, read_header


def test_header_versions() -> None:
    wide = read_header(struct.pack("<3iq", 0, 2, 5, 14231680), "w")
    assert (wide.major, wide.minor, wide.revision, wide.seen, wide.size) == (0, 2, 5, 14231680, 20)
    narrow = read_header(struct.pack("<4i", 0, 1, 0, 99), "w")
    assert (narrow.seen, narrow.size) == (99, 16)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "too short"),
        (struct.pack("<3i", 0, 2, 0) + b"\0", "truncated inside its 20-byte header"),
        (struct.pack("<3iq", 1001, 0, 0, 0), "not a darknet .weights file"),
    ],
)
def test_bad_headers(data: bytes, words: str) -> None:
    with pytest.raises(ModelFormatError, match="bad.weights") as err:
        read_header(data, "bad.weights")
    assert words in str(err.value)


def test_reader_hands_out_consecutive_values(tmp_path: Path) -> None:
    path = tmp_path / "m.weights"
    values = np.arange(10, dtype="<f4")
    path.write_bytes(struct.pack("<3iq", 0, 2, 5, 7) + values.tobytes())
    reader = WeightsReader(path, 10, "m.cfg")
    assert reader.header.seen == 7
    np.testing.assert_array_equal(reader.take(3), [0, 1, 2])
    np.testing.assert_array_equal(reader.take(7), np.arange(3, 10))
    assert reader.remaining == 0


@pytest.mark.parametrize(("have", "problem"), [(9, "is truncated"), (11, "has extra bytes")])
def test_count_mismatch_names_both_counts(tmp_path: Path, have: int, problem: str) -> None:
    path = tmp_path / "m.weights"
    path.write_bytes(struct.pack("<3iq", 0, 2, 5, 7) + np.zeros(have, "<f4").tobytes())
    with pytest.raises(ModelFormatError) as err:
        WeightsReader(path, 10, "m.cfg")
    message = str(err.value)
    assert (
        message.startswith(f"{path} {problem}") and "needs 10 float32" in message and f"has {have}" in message
    )


def test_partial_float_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.weights"
    path.write_bytes(struct.pack("<3iq", 0, 2, 5, 7) + np.zeros(10, "<f4").tobytes() + b"\0\0")
    with pytest.raises(ModelFormatError, match="has 10.5"):
        WeightsReader(path, 10, "m.cfg")


def test_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="gone.weights"):
        WeightsReader(tmp_path / "gone.weights", 1, "m.cfg")
