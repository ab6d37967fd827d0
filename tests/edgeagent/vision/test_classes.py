"""Class-name lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeagent.vision.classes import COCO80, class_names
from edgeagent.vision.errors import ParamsError


def test_coco80_matches_the_dataset_yaml(data_dir: Path) -> None:
    lines = (data_dir / "coco128" / "data.yaml").read_text().splitlines()
    names = {}
    for line in lines:
        key, sep, value = line.strip().partition(": ")
        if sep and key.isdigit():
            names[int(key)] = value.strip()
    assert tuple(names[i] for i in range(80)) == COCO80


def test_coco80_shape() -> None:
    assert len(COCO80) == 80 == len(set(COCO80))
    assert (COCO80[0], COCO80[5], COCO80[27], COCO80[79]) == ("person", "bus", "tie", "toothbrush")


def test_builtin_and_explicit() -> None:
    assert class_names("coco80") == list(COCO80)
    assert class_names("face") == ["face"]
    assert class_names(["cat", "dog"]) == ["cat", "dog"]


@pytest.mark.parametrize("spec", ["voc", [], ["a", 3]])
def test_bad_specs(spec: object) -> None:
    with pytest.raises(ParamsError):
        class_names(spec)  # type: ignore[arg-type]
