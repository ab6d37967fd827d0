"""The darknet cfg parser on small cfg texts: every layer kind, defaults, and errors with line numbers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edgesdk.errors import ArtifactNotFound, ModelFormatError
from edgesdk.importers.darknet_cfg import (
    ConvSpec,
    DropoutSpec,
    MaxPoolSpec,
    RouteSpec,
    ShortcutSpec,
    UpsampleSpec,
    YoloSpec,
    layer_kinds,
    parse_cfg,
    parse_sections,
    read_cfg,
)

ALL_KINDS = """
# a comment
[net]
Width = 32   # inline comment
height=24
channels=3
batch=64

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[conv]
filters=16
groups=16
size=5
padding=1
activation=mish

[convolutional]
filters=8
size=1

[shortcut]
from=-3, -2
activation=swish

[route]
layers=-1
groups=2
group_id=1

[route]
layers = -2, 0

[max]
size=2

[maxpool]
stride=2

[upsample]

[dropout]
probability=.1

; another comment
[yolo]
mask = 2,1
anchors = 10,14,  23,27,  37,58
classes=3
num=3
scale_x_y = 1.1
jitter=.3
"""


def test_every_layer_kind() -> None:
    cfg = parse_cfg(ALL_KINDS, "all.cfg")
    assert (cfg.net.width, cfg.net.height, cfg.net.channels, cfg.net.line) == (32, 24, 3, 3)
    kinds = [type(layer) for layer in cfg.layers]
    assert kinds == [
        ConvSpec, ConvSpec, ConvSpec, ShortcutSpec, RouteSpec, RouteSpec,
        MaxPoolSpec, MaxPoolSpec, UpsampleSpec, DropoutSpec, YoloSpec,
    ]  # fmt: skip
    assert [layer.index for layer in cfg.layers] == list(range(11))
    c0, c1, c2, sc, r1, r2, m1, m2, up, _, yolo = cfg.layers
    assert isinstance(c1, ConvSpec) and isinstance(c2, ConvSpec) and isinstance(sc, ShortcutSpec)
    assert isinstance(r1, RouteSpec) and isinstance(r2, RouteSpec) and isinstance(m1, MaxPoolSpec)
    assert isinstance(m2, MaxPoolSpec) and isinstance(up, UpsampleSpec) and isinstance(yolo, YoloSpec)
    assert c0 == ConvSpec(0, 9, filters=16, size=3, stride=2, padding=1, groups=1, batch_normalize=True,
                          activation="leaky")  # fmt: skip
    assert (c1.groups, c1.padding, c1.activation, c1.batch_normalize) == (16, 1, "mish", False)
    assert (c2.padding, c2.stride, c2.activation) == (0, 1, "logistic")  # darknet's default activation
    assert sc.sources == (0, 1) and sc.activation == "swish"
    assert (r1.sources, r1.groups, r1.group_id) == ((3,), 2, 1)
    assert (r2.sources, r2.groups) == ((3, 0), 1)
    assert (m1.size, m1.stride, m1.padding) == (2, 1, 1)  # darknet: stride 1, padding = size - 1
    assert (m2.size, m2.stride, m2.padding) == (2, 2, 1)  # size defaults to stride
    assert up.stride == 2
    assert yolo.mask == (2, 1) and yolo.classes == 3 and yolo.scale_x_y == pytest.approx(1.1)
    assert yolo.anchors == ((10, 14), (23, 27), (37, 58))
    assert yolo.head_anchors == [(37, 58), (23, 27)]


def test_sections_keep_line_numbers() -> None:
    sections = parse_sections("[net]\nwidth=8\n\n[Convolutional]\n  FILTERS = 4 \n")
    assert [(s.kind, s.line) for s in sections] == [("net", 1), ("convolutional", 4)]
    assert sections[1].options == {"filters": "4"} and sections[1].lines == {"filters": 5}


def test_yolo_mask_defaults_to_every_anchor() -> None:
    cfg = parse_cfg("[network]\nwidth=8\nheight=8\n[yolo]\nanchors=1,2,3,4\n")
    (yolo,) = cfg.layers
    assert isinstance(yolo, YoloSpec)
    assert yolo.mask == (0, 1) and yolo.classes == 20


def test_layer_kinds_lists_aliases() -> None:
    assert {"convolutional", "conv", "maxpool", "max", "route", "shortcut", "yolo"} <= set(layer_kinds())


def cfg_error(body: str) -> str:
    with pytest.raises(ModelFormatError) as err:
        parse_cfg(textwrap.dedent(body).lstrip(), "bad.cfg")
    return str(err.value)


NET = "[net]\nwidth=16\nheight=16\n"


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        (NET + "[convolutional]\nfilters=4\nactivation=gelu\n", "bad.cfg:6:", "gelu"),
        (NET + "[local]\nfilters=4\n", "bad.cfg:4:", "unsupported section [local]"),
        (NET + "[convolutional]\nfilters=four\n", "bad.cfg:5:", "not an integer"),
        (NET + "[convolutional]\nfilters=4\n[route]\nlayers=1\n", "bad.cfg:7:", "refers to layer 1"),
        (NET + "[convolutional]\nfilters=4\n[shortcut]\nfrom=-5\n", "bad.cfg:7:", "refers to layer -4"),
        (NET + "[convolutional]\nfilters=4\nfilters=8\n", "bad.cfg:6:", "set twice"),
        (NET + "[convolutional]\nfilters=4\ndilation=2\n", "bad.cfg:6:", "not supported"),
        (NET + "[convolutional]\nsize=3\nstride_x=2\n", "bad.cfg:6:", "stride_x"),
        (NET + "[shortcut]\nfrom=-1\nweights_type=per_channel\n", "bad.cfg:6:", "weights_type"),
        (NET + "[route]\nlayers=-1\ngroups=2\ngroup_id=2\n", "bad.cfg:7:", "group_id=2 must be < groups=2"),
        (NET + "[yolo]\nanchors=1,2,3\n", "bad.cfg:5:", "pairs"),
        (NET + "[yolo]\nanchors=1,2,3,4\nmask=0,2\n", "bad.cfg:6:", "mask=0,2"),
        (NET + "[yolo]\nanchors=1,2,3,4\nnum=3\n", "bad.cfg:6:", "num=3"),
        (NET + "[yolo]\nclasses=2\n", "bad.cfg:4:", "needs 'anchors='"),
        (NET + "[upsample]\nscale=2\n", "bad.cfg:5:", "scale=2"),
        ("width=3\n[net]\n", "bad.cfg:1:", "before the first [section]"),
        ("[net]\nwidth 16\n", "bad.cfg:2:", "expected '[section]' or 'key=value'"),
        ("[net\nwidth=16\n", "bad.cfg:1:", "malformed section header"),
        ("[convolutional]\nfilters=4\n", "bad.cfg:1:", "starts with [net]"),
        ("[net]\nheight=16\n", "bad.cfg:1:", "needs 'width='"),
        ("[net]\nwidth=-1\nheight=16\n", "bad.cfg:2:", "must be >= 1"),
        (NET, "bad.cfg", "no layers"),
    ],
)
def test_errors_name_file_and_line(body: str, where: str, words: str) -> None:
    message = cfg_error(body)
    assert message.startswith(where), message
    assert words in message


def test_read_cfg_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="missing.cfg"):
        read_cfg(tmp_path / "missing.cfg")


def test_read_cfg_real_yolo_fastest(models_dir: Path) -> None:
    cfg = read_cfg(models_dir / "yolo_fastest_1.1_coco" / "yolo-fastest-1.1.cfg")
    counts: dict[str, int] = {}
    for layer in cfg.layers:
        counts[type(layer).__name__] = counts.get(type(layer).__name__, 0) + 1
    assert counts == {
        "ConvSpec": 84, "ShortcutSpec": 18, "DropoutSpec": 18, "RouteSpec": 5,
        "MaxPoolSpec": 3, "UpsampleSpec": 1, "YoloSpec": 2,
    }  # fmt: skip
    assert sum(isinstance(x, ConvSpec) and x.batch_normalize for x in cfg.layers) == 82
    assert (cfg.net.width, cfg.net.height, cfg.net.channels) == (320, 320, 3)
