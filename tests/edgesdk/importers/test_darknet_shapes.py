"""Shape inference and weight counting for parsed darknet cfgs."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk.errors import ModelFormatError
from edgesdk.importers.darknet_cfg import ConvSpec, parse_cfg, read_cfg
from edgesdk.importers.darknet_shapes import conv_weight_count, infer_shapes, weight_count

NET = "[net]\nwidth=13\nheight=11\nchannels=3\n"
CONV = "[convolutional]\nfilters={f}\nsize={k}\nstride={s}\npad=1\nbatch_normalize={bn}\nactivation=leaky\n"


def test_shapes_follow_darknet_formulas() -> None:
    text = (
        NET
        + CONV.format(f=8, k=3, s=2, bn=1)  # 0: (8, 6, 7)
        + "[maxpool]\nsize=2\nstride=1\n"  # 1: same size (pad right/bottom)
        + "[maxpool]\nsize=2\nstride=2\n"  # 2: (8, 3, 4)
        + "[upsample]\nstride=2\n"  # 3: (8, 6, 8)
        + "[route]\nlayers=0\ngroups=2\ngroup_id=0\n"  # 4: (4, 6, 7)
        + "[route]\nlayers=-1,0\n"  # 5: (12, 6, 7)
        + CONV.format(f=12, k=1, s=1, bn=0)  # 6
        + "[shortcut]\nfrom=-2\n"  # 7
        + "[dropout]\n"  # 8
    )
    shapes = infer_shapes(parse_cfg(text))
    assert shapes == [(8, 6, 7), (8, 6, 7), (8, 3, 4), (8, 6, 8), (4, 6, 7), (12, 6, 7), (12, 6, 7),
                      (12, 6, 7), (12, 6, 7)]  # fmt: skip


def test_weight_count() -> None:
    spec = ConvSpec(
        0, 1, filters=8, size=3, stride=1, padding=1, groups=2, batch_normalize=True, activation="leaky"
    )
    assert conv_weight_count(spec, 6) == 8 * 4 + 8 * 3 * 9
    cfg = parse_cfg(NET + CONV.format(f=8, k=3, s=2, bn=1) + CONV.format(f=4, k=1, s=1, bn=0))
    assert weight_count(cfg) == (8 * 4 + 8 * 3 * 9) + (4 + 4 * 8)


def test_real_yolo_fastest_needs_exactly_the_file(models_dir: Path) -> None:
    folder = models_dir / "yolo_fastest_1.1_coco"
    cfg = read_cfg(folder / "yolo-fastest-1.1.cfg")
    assert weight_count(cfg) == 346062 == ((folder / "yolo-fastest-1.1.weights").stat().st_size - 20) // 4
    shapes = infer_shapes(cfg)
    assert shapes[120] == (255, 10, 10) and shapes[129] == (255, 20, 20)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (CONV.format(f=8, k=3, s=1, bn=0) + "[convolutional]\nfilters=8\ngroups=3\n", "groups=3 must divide"),
        (CONV.format(f=8, k=3, s=2, bn=0) * 2 + "[route]\nlayers=-1,-2\n", "spatial sizes must match"),
        (
            CONV.format(f=8, k=3, s=2, bn=0) + CONV.format(f=8, k=3, s=2, bn=0) + "[shortcut]\nfrom=-2\n",
            "different shapes",
        ),
        (CONV.format(f=8, k=1, s=1, bn=0) + "[yolo]\nanchors=1,1,2,2\nclasses=1\n", "set filters=12"),
        (
            CONV.format(f=12, k=1, s=1, bn=0) + "[yolo]\nanchors=1,1,2,2\nclasses=1\n[route]\nlayers=-1\n",
            "reads the output of [yolo] layer 1",
        ),
        ("[convolutional]\nfilters=8\nsize=15\n", "does not fit"),
    ],
)
def test_inconsistent_cfgs(body: str, words: str) -> None:
    with pytest.raises(ModelFormatError, match=r"^shape\.cfg:\d+: layer \d+") as err:
        infer_shapes(parse_cfg(NET + body, "shape.cfg"))
    assert words in str(err.value)
