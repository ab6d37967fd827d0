"""Shape inference for a parsed darknet cfg, and how many weights each convolution reads.

Pure Python over :mod:`edgesdk.importers.darknet_cfg` specs. Shapes are per image
(channels, height, width); darknet's output-size formulas (floor division) are used.
"""

from __future__ import annotations

from edgesdk.errors import ModelFormatError
from edgesdk.importers.darknet_cfg import (
    ConvSpec,
    DarknetCfg,
    DropoutSpec,
    LayerSpec,
    MaxPoolSpec,
    RouteSpec,
    ShortcutSpec,
    UpsampleSpec,
    YoloSpec,
)

Shape = tuple[int, int, int]


def _where(cfg: DarknetCfg, spec: LayerSpec) -> str:
    kind = type(spec).__name__.replace("Spec", "").lower()
    return f"{cfg.source}:{spec.line}: layer {spec.index} ({kind})"


def _conv_shape(cfg: DarknetCfg, spec: ConvSpec, x: Shape) -> Shape:
    c, h, w = x
    if c % spec.groups or spec.filters % spec.groups:
        raise ModelFormatError(
            f"{_where(cfg, spec)}: groups={spec.groups} must divide both the {c} input channels "
            f"and filters={spec.filters}"
        )
    oh = (h + 2 * spec.padding - spec.size) // spec.stride + 1
    ow = (w + 2 * spec.padding - spec.size) // spec.stride + 1
    if oh < 1 or ow < 1:
        raise ModelFormatError(f"{_where(cfg, spec)}: a {spec.size}x{spec.size} kernel does not fit {h}x{w}")
    return spec.filters, oh, ow


def _shortcut_shape(cfg: DarknetCfg, spec: ShortcutSpec, x: Shape, shapes: list[Shape]) -> Shape:
    for src in spec.sources:
        if shapes[src] != x:
            raise ModelFormatError(
                f"{_where(cfg, spec)}: adds layer {src} of shape {shapes[src]} to the previous layer's "
                f"{x}; shortcuts between different shapes are not supported"
            )
    return x


def _route_shape(cfg: DarknetCfg, spec: RouteSpec, shapes: list[Shape]) -> Shape:
    channels = 0
    first = shapes[spec.sources[0]]
    for src in spec.sources:
        c, h, w = shapes[src]
        if (h, w) != first[1:]:
            raise ModelFormatError(
                f"{_where(cfg, spec)}: concatenates layer {src} ({h}x{w}) with layer "
                f"{spec.sources[0]} ({first[1]}x{first[2]}); spatial sizes must match"
            )
        if c % spec.groups:
            raise ModelFormatError(
                f"{_where(cfg, spec)}: groups={spec.groups} does not divide the {c} channels of layer {src}"
            )
        channels += c // spec.groups
    return channels, first[1], first[2]


def _yolo_shape(cfg: DarknetCfg, spec: YoloSpec, x: Shape) -> Shape:
    expected = len(spec.mask) * (5 + spec.classes)
    if x[0] != expected:
        raise ModelFormatError(
            f"{_where(cfg, spec)}: the previous layer has {x[0]} channels but {len(spec.mask)} anchors x "
            f"(5 + {spec.classes} classes) = {expected}; set filters={expected} in the conv before it"
        )
    return x


def _layer_shape(cfg: DarknetCfg, spec: LayerSpec, x: Shape, shapes: list[Shape]) -> Shape:
    if isinstance(spec, ConvSpec):
        return _conv_shape(cfg, spec, x)
    if isinstance(spec, ShortcutSpec):
        return _shortcut_shape(cfg, spec, x, shapes)
    if isinstance(spec, RouteSpec):
        return _route_shape(cfg, spec, shapes)
    if isinstance(spec, UpsampleSpec):
        return x[0], x[1] * spec.stride, x[2] * spec.stride
    if isinstance(spec, MaxPoolSpec):
        oh = (x[1] + spec.padding - spec.size) // spec.stride + 1
        ow = (x[2] + spec.padding - spec.size) // spec.stride + 1
        if oh < 1 or ow < 1:
            raise ModelFormatError(f"{_where(cfg, spec)}: a {spec.size}x{spec.size} pool does not fit")
        return x[0], oh, ow
    if isinstance(spec, DropoutSpec):
        return x
    if isinstance(spec, YoloSpec):
        return _yolo_shape(cfg, spec, x)
    raise TypeError(f"no shape rule for {type(spec).__name__}")


def _references(spec: LayerSpec) -> tuple[int, ...]:
    """The layers ``spec`` reads besides (or instead of) the previous one."""
    if isinstance(spec, (RouteSpec, ShortcutSpec)):
        return spec.sources
    return ()


def infer_shapes(cfg: DarknetCfg) -> list[Shape]:
    """Each layer's output shape (channels, height, width) for one image.

    A ``[yolo]`` layer's entry is its input's shape (the raw head); no layer may read a
    ``[yolo]`` layer's output, since that is darknet's decoded form.

    Raises:
        ModelFormatError: inconsistent channels, spatial sizes or head sizes; the message
            names the cfg file, line and layer.
    """
    shapes: list[Shape] = []
    x: Shape = (cfg.net.channels, cfg.net.height, cfg.net.width)
    yolo = {spec.index for spec in cfg.layers if isinstance(spec, YoloSpec)}
    for spec in cfg.layers:
        reads_previous = not isinstance(spec, RouteSpec)
        used = set(_references(spec)) | ({spec.index - 1} if reads_previous and spec.index else set())
        if used & yolo:
            raise ModelFormatError(
                f"{_where(cfg, spec)}: reads the output of [yolo] layer {min(used & yolo)}, "
                "which this importer does not produce; route to the conv before the [yolo] instead"
            )
        x = _layer_shape(cfg, spec, x, shapes)
        shapes.append(x)
    return shapes


def conv_weight_count(spec: ConvSpec, in_channels: int) -> int:
    """How many float32 values a convolution reads from a ``.weights`` file.

    ``filters`` biases (BN beta), plus gamma, mean and variance with BN, plus the kernel
    ``[filters, in_channels / groups, size, size]``.
    """
    per_channel = 4 if spec.batch_normalize else 1
    return spec.filters * per_channel + spec.filters * (in_channels // spec.groups) * spec.size**2


def input_shapes(cfg: DarknetCfg, shapes: list[Shape]) -> list[Shape]:
    """The shape each layer receives from its previous layer (the net input for layer 0)."""
    first: Shape = (cfg.net.channels, cfg.net.height, cfg.net.width)
    return [first, *shapes[:-1]]


def weight_count(cfg: DarknetCfg, shapes: list[Shape] | None = None) -> int:
    """Total float32 values the cfg's convolutions need (what follows the file header)."""
    shapes = infer_shapes(cfg) if shapes is None else shapes
    inputs = input_shapes(cfg, shapes)
    return sum(
        conv_weight_count(spec, inputs[spec.index][0]) for spec in cfg.layers if isinstance(spec, ConvSpec)
    )
