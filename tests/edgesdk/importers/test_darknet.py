"""darknet -> ONNX: tiny generated models and the real Yolo-Fastest against OpenCV's darknet importer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesdk.errors import ArtifactNotFound, ModelFormatError, RecipeError
from edgesdk.importers.darknet import darknet_to_onnx

ATOL_TINY = 1e-4
ATOL_REAL = 1e-3


def net(width: int = 16, height: int = 16) -> str:
    return f"[net]\nwidth={width}\nheight={height}\nchannels=3\n\n"


def conv(
    filters: int, size: int = 3, stride: int = 1, bn: int = 1, act: str = "leaky", extra: str = ""
) -> str:
    pad = "pad=1" if size > 1 else "pad=0"
    return (
        f"[convolutional]\nfilters={filters}\nsize={size}\nstride={stride}\n{pad}\n"
        f"batch_normalize={bn}\nactivation={act}\n{extra}\n"
    )


def head(classes: int = 1, mask: str = "0,1,2") -> str:
    n = len(mask.split(","))
    return conv(n * (5 + classes), size=1, bn=0, act="linear") + (
        f"[yolo]\nmask={mask}\nanchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319\n"
        f"classes={classes}\nnum=6\nscale_x_y=1.05\n\n"
    )


def blob(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


def compare(cfg: Path, weights: Path, opencv_heads, ort_outputs, *, batch: int = 1, **kwargs) -> float:
    """Max abs difference of every head between our ONNX (onnxruntime) and OpenCV."""
    model = darknet_to_onnx(cfg, weights, batch=batch, **kwargs)
    shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    x = blob(shape)
    ours = ort_outputs(model.SerializeToString(), x)
    theirs = opencv_heads(cfg, weights, x)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
    return max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))


# --------------------------------------------------------------------------- tiny models vs OpenCV

TINY = {
    "depthwise": net() + conv(8) + conv(8, 3, 2, extra="groups=8") + conv(8, 1, extra="groups=2") + head(),
    "shortcut": net()
    + conv(8)
    + conv(4, 1)
    + conv(8, act="linear")
    + "[shortcut]\nfrom=-3\nactivation=leaky\n\n"
    + head(),
    "dropout-shortcut": net()
    + conv(8)
    + conv(8, act="linear")
    + "[dropout]\nprobability=.15\n\n"
    + "[shortcut]\nfrom=-3\nactivation=linear\n\n"
    + head(),
    "route-groups": net()
    + conv(8)
    + "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n\n"
    + conv(6)
    + "[route]\nlayers=-1,-3\n\n"
    + head(),
    "upsample-two-heads": net(32, 32)
    + conv(8, stride=2)
    + conv(16, stride=2)
    + head(mask="3,4,5")
    + "[route]\nlayers=-3\n\n"
    + conv(8, 1)
    + "[upsample]\nstride=2\n\n"
    + "[route]\nlayers=-1,0\n\n"
    + head(),
    "conv-padding": net(13, 11)
    + conv(8, 3, 2, extra="")
    + conv(8, 3, 2).replace("pad=1", "pad=0")
    + conv(8, 3, 1).replace("pad=1", "padding=1")
    + head(),
    "spp": net()
    + conv(8)
    + "[maxpool]\nstride=1\nsize=3\n\n"
    + "[route]\nlayers=-2\n\n"
    + "[maxpool]\nstride=1\nsize=5\n\n"
    + "[route]\nlayers=-1,-3,-4\n\n"
    + head(),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_model_matches_opencv(name: str, write_darknet, opencv_heads, ort_outputs) -> None:
    cfg, weights = write_darknet(TINY[name], name=name)
    assert compare(cfg, weights, opencv_heads, ort_outputs) <= ATOL_TINY


@pytest.mark.parametrize("act", ["leaky", "linear", "logistic", "mish", "swish", "relu"])
@pytest.mark.parametrize("fuse_bn", [True, False])
def test_activations_match_opencv(act: str, fuse_bn: bool, write_darknet, opencv_heads, ort_outputs) -> None:
    cfg, weights = write_darknet(net() + conv(8, act=act) + conv(8, act=act, bn=0) + head(), name=act)
    assert compare(cfg, weights, opencv_heads, ort_outputs, fuse_bn=fuse_bn) <= ATOL_TINY


@pytest.mark.parametrize(
    ("size", "stride", "hw"),
    [
        (2, 1, (13, 11)),
        (3, 1, (13, 11)),
        (2, 2, (13, 11)),
        (2, 2, (16, 16)),
        (3, 2, (13, 11)),
        (5, 1, (9, 9)),
    ],
)
def test_maxpool_matches_opencv(size, stride, hw, write_darknet, opencv_heads, ort_outputs) -> None:
    text = net(*hw) + conv(8) + f"[maxpool]\nsize={size}\nstride={stride}\n\n" + head()
    cfg, weights = write_darknet(text, name=f"pool{size}{stride}")
    assert compare(cfg, weights, opencv_heads, ort_outputs) <= ATOL_TINY


def test_maxpool_size2_stride1_pads_right_and_bottom(write_darknet) -> None:
    cfg, weights = write_darknet(net() + conv(8) + "[maxpool]\nsize=2\nstride=1\n\n" + head())
    pool = next(n for n in darknet_to_onnx(cfg, weights).graph.node if n.op_type == "MaxPool")
    pads = next(a.ints for a in pool.attribute if a.name == "pads")
    assert list(pads) == [0, 0, 1, 1]


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_opsets_and_batch_match_opencv(opset: int, write_darknet, opencv_heads, ort_outputs) -> None:
    cfg, weights = write_darknet(TINY["route-groups"].replace("leaky", "mish"), name=f"opset{opset}")
    model = darknet_to_onnx(cfg, weights, opset=opset, batch=2)
    assert model.opset_import[0].version == opset
    assert compare(cfg, weights, opencv_heads, ort_outputs, opset=opset, batch=2) <= ATOL_TINY


def test_multi_source_shortcut_equals_chained_shortcuts(write_darknet, ort_outputs) -> None:
    base = net() + conv(8) + conv(8) + conv(8)
    one = write_darknet(base + "[shortcut]\nfrom=-2,-3\n\n" + head(), name="one")
    two = write_darknet(base + "[shortcut]\nfrom=-2\n\n[shortcut]\nfrom=-4\n\n" + head(), name="two")
    x = blob((1, 3, 16, 16))
    a = ort_outputs(darknet_to_onnx(*one).SerializeToString(), x)[0]
    b = ort_outputs(darknet_to_onnx(*two).SerializeToString(), x)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


# --------------------------------------------------------------------------- graph structure


def test_names_outputs_and_metadata(write_darknet) -> None:
    cfg, weights = write_darknet(TINY["upsample-two-heads"])
    model = darknet_to_onnx(cfg, weights, fuse_bn=False, batch=3)
    nodes = {n.name: n for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    assert {"conv_0", "bn_0", "leaky_0", "upsample_6", "route_7"} <= set(nodes)
    assert {"conv_0.weight", "bn_0.scale", "bn_0.bias", "bn_0.mean", "bn_0.var", "conv_2.bias"} <= inits
    assert "conv_0.bias" not in inits  # BN supplies the bias when kept
    assert nodes["conv_2"].output[0] == "yolo_0" and nodes["conv_8"].output[0] == "yolo_1"
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    assert outs == [("yolo_0", [3, 18, 8, 8]), ("yolo_1", [3, 18, 16, 16])]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["source"] == "darknet" and meta["darknet_cfg"] == "tiny.cfg"
    heads = json.loads(meta["yolo_heads"])
    assert [h["mask"] for h in heads] == [[3, 4, 5], [0, 1, 2]]
    assert heads[0]["anchors"] == [[81.0, 82.0], [135.0, 169.0], [344.0, 319.0]]
    assert [h["stride"] for h in heads] == [4, 2] and heads[0]["scale_x_y"] == 1.05


def test_fuse_bn_controls_batchnorm_nodes(write_darknet) -> None:
    cfg, weights = write_darknet(TINY["depthwise"])
    fused = darknet_to_onnx(cfg, weights)
    kept = darknet_to_onnx(cfg, weights, fuse_bn=False)
    assert sum(n.op_type == "BatchNormalization" for n in fused.graph.node) == 0
    bns = [n for n in kept.graph.node if n.op_type == "BatchNormalization"]
    assert [n.name for n in bns] == ["bn_0", "bn_1", "bn_2"]
    eps = next(a.f for a in bns[0].attribute if a.name == "epsilon")
    assert eps == pytest.approx(1e-6)
    depthwise = next(n for n in kept.graph.node if n.name == "conv_1")
    assert next(a.i for a in depthwise.attribute if a.name == "group") == 8


def test_mish_is_composed_without_the_mish_op(write_darknet) -> None:
    cfg, weights = write_darknet(net() + conv(8, act="mish") + head())
    ops = [n.op_type for n in darknet_to_onnx(cfg, weights, opset=18).graph.node]
    assert "Mish" not in ops and {"Softplus", "Tanh", "Mul"} <= set(ops)


# --------------------------------------------------------------------------- errors


def test_truncated_weights_say_both_counts(write_darknet) -> None:
    cfg, weights = write_darknet(TINY["shortcut"])
    data = weights.read_bytes()
    weights.write_bytes(data[:-40])
    needed = (len(data) - 20) // 4
    with pytest.raises(ModelFormatError, match="truncated") as err:
        darknet_to_onnx(cfg, weights)
    assert (
        str(weights) in str(err.value)
        and str(needed) in str(err.value)
        and str(needed - 10) in str(err.value)
    )


def test_extra_bytes_are_refused(write_darknet) -> None:
    cfg, weights = write_darknet(TINY["shortcut"])
    weights.write_bytes(weights.read_bytes() + b"\0" * 8)
    with pytest.raises(ModelFormatError, match="extra bytes") as err:
        darknet_to_onnx(cfg, weights)
    assert str(weights) in str(err.value)


def test_weights_shorter_than_header(write_darknet) -> None:
    cfg, weights = write_darknet(TINY["shortcut"])
    weights.write_bytes(b"\0\0\0\0\x02")
    with pytest.raises(ModelFormatError, match="too short") as err:
        darknet_to_onnx(cfg, weights)
    assert str(weights) in str(err.value)


def test_garbage_cfg_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "garbage.cfg"
    cfg.write_text("[net]\nwidth=16\nheight=16\nthis is not a cfg line\n")
    with pytest.raises(ModelFormatError, match=r"garbage\.cfg:4:"):
        darknet_to_onnx(cfg, tmp_path / "garbage.weights")


def test_binary_cfg_is_a_format_error(tmp_path: Path) -> None:
    cfg = tmp_path / "binary.cfg"
    cfg.write_bytes(bytes(range(256)))
    with pytest.raises(ModelFormatError, match="binary.cfg"):
        darknet_to_onnx(cfg, tmp_path / "x.weights")


def test_missing_files(write_darknet, tmp_path: Path) -> None:
    cfg, weights = write_darknet(TINY["shortcut"])
    with pytest.raises(ArtifactNotFound, match="nope.cfg"):
        darknet_to_onnx(tmp_path / "nope.cfg", weights)
    with pytest.raises(ArtifactNotFound, match="nope.weights"):
        darknet_to_onnx(cfg, tmp_path / "nope.weights")


def test_head_filters_must_match_the_yolo_layer(write_darknet) -> None:
    text = (
        net() + conv(8) + conv(17, size=1, bn=0, act="linear") + "[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\n"
    )
    text += "classes=1\nnum=3\n"
    with pytest.raises(ModelFormatError, match=r"filters=18"):
        write_darknet(text)


def test_cfg_without_yolo_is_refused(write_darknet) -> None:
    cfg, weights = write_darknet(net() + conv(8))
    with pytest.raises(ModelFormatError, match=r"no \[yolo\]"):
        darknet_to_onnx(cfg, weights)


@pytest.mark.parametrize(("opset", "batch"), [(10, 1), (22, 1), (13, 0)])
def test_bad_opset_or_batch(opset: int, batch: int, write_darknet) -> None:
    cfg, weights = write_darknet(TINY["shortcut"])
    with pytest.raises(RecipeError):
        darknet_to_onnx(cfg, weights, opset=opset, batch=batch)


# --------------------------------------------------------------------------- the real Yolo-Fastest


@pytest.fixture(scope="module")
def fastest(models_dir: Path) -> tuple[Path, Path]:
    folder = models_dir / "yolo_fastest_1.1_coco"
    return folder / "yolo-fastest-1.1.cfg", folder / "yolo-fastest-1.1.weights"


@pytest.fixture(scope="module")
def real_images(data_dir: Path) -> dict[str, np.ndarray]:
    """bus, zidane and the first three COCO val images as 320x320 RGB /255 NCHW blobs (plain resize)."""
    import cv2

    paths = sorted((data_dir / "sample_images").glob("*.jpg"))
    paths += sorted((data_dir / "coco_val2017_first128" / "images" / "val2017").glob("*.jpg"))[:3]
    out = {}
    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None, path
        out[path.stem] = cv2.dnn.blobFromImage(image, 1 / 255.0, (320, 320), swapRB=True, crop=False)
    return out


@pytest.mark.parametrize("fuse_bn", [True, False])
def test_yolo_fastest_matches_opencv(fuse_bn, fastest, real_images, opencv_heads, ort_outputs) -> None:
    cfg, weights = fastest
    model = darknet_to_onnx(cfg, weights, fuse_bn=fuse_bn)
    data = model.SerializeToString()
    assert len(real_images) == 5
    worst = 0.0
    for name, x in real_images.items():
        ours, theirs = ort_outputs(data, x), opencv_heads(cfg, weights, x)
        assert [a.shape for a in ours] == [(1, 255, 10, 10), (1, 255, 20, 20)]
        diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
        print(f"yolo-fastest fuse_bn={fuse_bn} {name}: max abs diff vs OpenCV {diff:.2e}")
        worst = max(worst, diff)
    assert worst <= ATOL_REAL


def test_yolo_fastest_structure(fastest) -> None:
    model = darknet_to_onnx(*fastest, fuse_bn=False)
    ops = [n.op_type for n in model.graph.node]
    # 84 convs, 82 of them with batch_normalize=1 (the two head convs have none)
    assert ops.count("Conv") == 84 and ops.count("BatchNormalization") == 82
    assert ops.count("MaxPool") == 3 and ops.count("Resize") == 1 and ops.count("Add") == 18
    heads = json.loads({p.key: p.value for p in model.metadata_props}["yolo_heads"])
    assert [(h["grid"], h["stride"], h["mask"]) for h in heads] == [
        ([10, 10], 32, [3, 4, 5]),
        ([20, 20], 16, [0, 1, 2]),
    ]
    assert heads[0]["anchors"] == [[115.0, 73.0], [119.0, 199.0], [242.0, 238.0]]
