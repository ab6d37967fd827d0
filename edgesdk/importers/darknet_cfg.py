"""A pure parser for darknet ``.cfg`` files (AlexeyAB dialect): sections with line numbers, typed layers.

No numpy, no onnx: text in, frozen dataclasses out. Layer indices are darknet's (the first
section after ``[net]`` is layer 0); ``route``/``shortcut`` references are resolved to
absolute indices here. Defaults follow darknet's own parser (``src/parser.c``), which in
a few places differs from OpenCV's importer: a ``[convolutional]`` without ``activation``
is ``logistic``; ``[maxpool]`` defaults to stride 1 and ``size = stride``; ``[upsample]``
defaults to stride 2. Options that change inference and that we do not implement
(dilation, binary convs, weighted shortcuts, ...) are rejected instead of ignored;
training-only options (jitter, ignore_thresh, ...) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

from edgesdk.errors import ArtifactNotFound, EdgeSdkInternalError, ModelFormatError

ACTIVATIONS = ("linear", "leaky", "logistic", "mish", "swish", "relu")


@dataclass(frozen=True)
class CfgSection:
    """One ``[name]`` block of a cfg file.

    Attributes:
        kind: the section name without brackets, lower-cased (``convolutional``).
        line: 1-based line number of the ``[name]`` header.
        options: key -> raw value string.
        lines: key -> 1-based line number where the key was set.
    """

    kind: str
    line: int
    options: dict[str, str]
    lines: dict[str, int]


@dataclass(frozen=True)
class NetSpec:
    """The ``[net]`` section: input size (pixels) and channels."""

    width: int
    height: int
    channels: int
    line: int


@dataclass(frozen=True)
class ConvSpec:
    """``[convolutional]``: kernel ``size``×``size``, symmetric ``padding`` (pixels), optional BN."""

    index: int
    line: int
    filters: int
    size: int
    stride: int
    padding: int
    groups: int
    batch_normalize: bool
    activation: str


@dataclass(frozen=True)
class ShortcutSpec:
    """``[shortcut]``: element-wise sum of the previous layer and ``sources``, then ``activation``."""

    index: int
    line: int
    sources: tuple[int, ...]
    activation: str


@dataclass(frozen=True)
class RouteSpec:
    """``[route]``: channel concat of ``sources``; with groups, each source's ``group_id``-th chunk."""

    index: int
    line: int
    sources: tuple[int, ...]
    groups: int
    group_id: int


@dataclass(frozen=True)
class UpsampleSpec:
    """``[upsample]``: nearest-neighbour upsampling by an integer ``stride``."""

    index: int
    line: int
    stride: int


@dataclass(frozen=True)
class MaxPoolSpec:
    """``[maxpool]``: ``padding`` is the total pad (darknet: begin = padding//2, the rest at the end)."""

    index: int
    line: int
    size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class DropoutSpec:
    """``[dropout]``: identity at inference."""

    index: int
    line: int


@dataclass(frozen=True)
class YoloSpec:
    """``[yolo]``: a detection head over the previous layer's raw output.

    Attributes:
        mask: indices into ``anchors`` used by this head.
        anchors: every anchor of the model as (w, h) in input pixels.
    """

    index: int
    line: int
    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]
    classes: int
    scale_x_y: float
    new_coords: bool

    @property
    def head_anchors(self) -> list[tuple[float, float]]:
        """The (w, h) anchors of this head, in mask order."""
        return [self.anchors[m] for m in self.mask]


LayerSpec = Union[ConvSpec, ShortcutSpec, RouteSpec, UpsampleSpec, MaxPoolSpec, DropoutSpec, YoloSpec]


@dataclass(frozen=True)
class DarknetCfg:
    """A parsed cfg: the input and the layers in darknet order (``layers[i].index == i``)."""

    source: str
    net: NetSpec
    layers: tuple[LayerSpec, ...]


# --------------------------------------------------------------------------- sections


def parse_sections(text: str, source: str = "<cfg>") -> list[CfgSection]:
    """Split cfg text into sections, keeping line numbers.

    Blank lines and lines starting with ``#`` or ``;`` are skipped; a ``#`` after a value
    starts a comment. Keys and values are stripped; keys are lower-cased.

    Raises:
        ModelFormatError: a line that is neither ``[section]`` nor ``key=value``, a key
            before the first section, or a key set twice in one section.
    """
    sections: list[CfgSection] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ModelFormatError(f"{source}:{number}: malformed section header {line!r}")
            sections.append(CfgSection(line[1:-1].strip().lower(), number, {}, {}))
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.split("#", 1)[0].strip()
        if not sep or not key:
            raise ModelFormatError(f"{source}:{number}: expected '[section]' or 'key=value', got {line!r}")
        if not sections:
            raise ModelFormatError(f"{source}:{number}: {key!r} appears before the first [section]")
        current = sections[-1]
        if key in current.options:
            raise ModelFormatError(
                f"{source}:{number}: {key!r} is set twice in [{current.kind}] "
                f"(first on line {current.lines[key]})"
            )
        current.options[key] = value
        current.lines[key] = number
    return sections


class _Options:
    """Typed access to one section's options; every error names the file and line."""

    def __init__(self, section: CfgSection, source: str) -> None:
        self.section = section
        self.source = source

    def where(self, key: str | None = None) -> str:
        line = self.section.lines.get(key, self.section.line) if key else self.section.line
        return f"{self.source}:{line}: [{self.section.kind}]"

    def error(self, key: str | None, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where(key)} {message}")

    def has(self, key: str) -> bool:
        return key in self.section.options

    def text(self, key: str, default: str | None = None) -> str:
        value = self.section.options.get(key)
        if value is None or value == "":
            if default is None:
                raise self.error(None, f"needs '{key}='")
            return default
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None) -> int:
        raw = self.text(key, None if default is None else str(default))
        try:
            value = int(raw)
        except ValueError:
            raise self.error(key, f"{key}={raw!r} is not an integer") from None
        if minimum is not None and value < minimum:
            raise self.error(key, f"{key}={value} must be >= {minimum}")
        return value

    def number(self, key: str, default: float) -> float:
        raw = self.text(key, repr(default))
        try:
            return float(raw)
        except ValueError:
            raise self.error(key, f"{key}={raw!r} is not a number") from None

    def integers(self, key: str) -> tuple[int, ...]:
        raw = self.text(key)
        try:
            return tuple(int(v) for v in raw.split(",") if v.strip())
        except ValueError:
            raise self.error(key, f"{key}={raw!r} is not a comma-separated list of integers") from None

    def numbers(self, key: str) -> tuple[float, ...]:
        raw = self.text(key)
        try:
            return tuple(float(v) for v in raw.split(",") if v.strip())
        except ValueError:
            raise self.error(key, f"{key}={raw!r} is not a comma-separated list of numbers") from None

    def activation(self, default: str) -> str:
        value = self.text("activation", default).lower()
        if value not in ACTIVATIONS:
            raise self.error(
                "activation", f"unsupported activation {value!r}; supported: {', '.join(ACTIVATIONS)}"
            )
        return value

    def reject(self, key: str, neutral: str) -> None:
        """Refuse an option we do not implement unless it has its no-op value."""
        if self.has(key) and self.section.options[key] != neutral:
            raise self.error(key, f"{key}={self.section.options[key]} is not supported by this importer")

    def layers(self, key: str, index: int) -> tuple[int, ...]:
        """Layer references (negative = relative to ``index``) as absolute indices before ``index``."""
        refs = self.integers(key)
        if not refs:
            raise self.error(key, f"{key}= lists no layers")
        out = []
        for ref in refs:
            absolute = index + ref if ref < 0 else ref
            if not 0 <= absolute < index:
                raise self.error(
                    key, f"{key}: {ref} refers to layer {absolute}, not one before layer {index}"
                )
            out.append(absolute)
        return tuple(out)


# --------------------------------------------------------------------------- layers

_LayerParser = Callable[[_Options, int], LayerSpec]
_PARSERS: dict[str, _LayerParser] = {}


def _parser(*kinds: str) -> Callable[[_LayerParser], _LayerParser]:
    def wrap(fn: _LayerParser) -> _LayerParser:
        for kind in kinds:
            if kind in _PARSERS:
                raise EdgeSdkInternalError(f"darknet section [{kind}] registered twice")
            _PARSERS[kind] = fn
        return fn

    return wrap


@_parser("convolutional", "conv")
def _conv(opts: _Options, index: int) -> ConvSpec:
    for key, neutral in (("dilation", "1"), ("binary", "0"), ("xnor", "0"), ("flipped", "0")):
        opts.reject(key, neutral)
    for key in ("antialiasing", "deform", "share_index"):
        opts.reject(key, "0")
    size = opts.integer("size", 1, minimum=1)
    stride = opts.integer("stride", 1, minimum=1)
    for key in ("stride_x", "stride_y"):
        opts.reject(key, str(stride))
    padding = size // 2 if opts.integer("pad", 0) else opts.integer("padding", 0, minimum=0)
    return ConvSpec(
        index=index,
        line=opts.section.line,
        filters=opts.integer("filters", 1, minimum=1),
        size=size,
        stride=stride,
        padding=padding,
        groups=opts.integer("groups", 1, minimum=1),
        batch_normalize=bool(opts.integer("batch_normalize", 0)),
        activation=opts.activation("logistic"),
    )


@_parser("shortcut")
def _shortcut(opts: _Options, index: int) -> ShortcutSpec:
    opts.reject("weights_type", "none")
    opts.reject("alpha", "1")
    opts.reject("beta", "1")
    return ShortcutSpec(index, opts.section.line, opts.layers("from", index), opts.activation("linear"))


@_parser("route")
def _route(opts: _Options, index: int) -> RouteSpec:
    groups = opts.integer("groups", 1, minimum=1)
    group_id = opts.integer("group_id", 0, minimum=0)
    if group_id >= groups:
        raise opts.error("group_id", f"group_id={group_id} must be < groups={groups}")
    return RouteSpec(index, opts.section.line, opts.layers("layers", index), groups, group_id)


@_parser("upsample")
def _upsample(opts: _Options, index: int) -> UpsampleSpec:
    opts.reject("scale", "1")
    return UpsampleSpec(index, opts.section.line, opts.integer("stride", 2, minimum=1))


@_parser("maxpool", "max")
def _maxpool(opts: _Options, index: int) -> MaxPoolSpec:
    for key in ("maxpool_depth", "antialiasing"):
        opts.reject(key, "0")
    stride = opts.integer("stride", 1, minimum=1)
    for key in ("stride_x", "stride_y"):
        opts.reject(key, str(stride))
    size = opts.integer("size", stride, minimum=1)
    padding = opts.integer("padding", size - 1, minimum=0)
    return MaxPoolSpec(index, opts.section.line, size, stride, padding)


@_parser("dropout")
def _dropout(opts: _Options, index: int) -> DropoutSpec:
    return DropoutSpec(index, opts.section.line)


@_parser("yolo")
def _yolo(opts: _Options, index: int) -> YoloSpec:
    flat = opts.numbers("anchors")
    if len(flat) % 2 or not flat:
        raise opts.error("anchors", f"anchors= needs (w, h) pairs, got {len(flat)} numbers")
    anchors = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
    num = opts.integer("num", len(anchors), minimum=1)
    if num != len(anchors):
        raise opts.error("num", f"num={num} but anchors= has {len(anchors)} pairs")
    mask = opts.integers("mask") if opts.has("mask") else tuple(range(num))
    if not mask or any(not 0 <= m < num for m in mask):
        raise opts.error("mask", f"mask={','.join(map(str, mask))} must index the {num} anchors")
    return YoloSpec(
        index=index,
        line=opts.section.line,
        mask=mask,
        anchors=anchors,
        classes=opts.integer("classes", 20, minimum=1),
        scale_x_y=opts.number("scale_x_y", 1.0),
        new_coords=bool(opts.integer("new_coords", 0)),
    )


def layer_kinds() -> list[str]:
    """The section names this parser understands (besides ``[net]``)."""
    return sorted(_PARSERS)


# --------------------------------------------------------------------------- whole file


def _net(opts: _Options) -> NetSpec:
    return NetSpec(
        width=opts.integer("width", minimum=1),
        height=opts.integer("height", minimum=1),
        channels=opts.integer("channels", 3, minimum=1),
        line=opts.section.line,
    )


def parse_cfg(text: str, source: str = "<cfg>") -> DarknetCfg:
    """Parse darknet cfg text into typed layers.

    Args:
        text: the whole ``.cfg`` file.
        source: how errors name the file (usually its path).

    Returns:
        The net input and the layers in darknet order.

    Raises:
        ModelFormatError: unknown section, unsupported option or activation, bad value or
            layer reference; the message names ``source`` and the line number.
    """
    sections = parse_sections(text, source)
    if not sections or sections[0].kind not in ("net", "network"):
        line = sections[0].line if sections else 1
        raise ModelFormatError(f"{source}:{line}: a darknet cfg starts with [net]; is this a darknet .cfg?")
    net = _net(_Options(sections[0], source))
    layers: list[LayerSpec] = []
    for section in sections[1:]:
        parser = _PARSERS.get(section.kind)
        if parser is None:
            raise ModelFormatError(
                f"{source}:{section.line}: unsupported section [{section.kind}]; "
                f"supported: {', '.join(layer_kinds())}"
            )
        layers.append(parser(_Options(section, source), len(layers)))
    if not layers:
        raise ModelFormatError(f"{source}: the cfg has a [net] section but no layers")
    return DarknetCfg(source, net, tuple(layers))


def read_cfg(path: Path) -> DarknetCfg:
    """Read and parse a ``.cfg`` file.

    Raises:
        ArtifactNotFound: the file does not exist.
        ModelFormatError: it is not readable text or does not parse (see :func:`parse_cfg`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactNotFound(f"darknet cfg {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFormatError(f"cannot read darknet cfg {path}: {err}; is it a text .cfg file?") from err
    return parse_cfg(text, str(path))
