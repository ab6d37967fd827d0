"""Recipes: one validated YAML file per model.

A recipe says where the model comes from, its input, pre-processing, decoder and its
parameters, graph fixes, and defaults for later stages (slim, quantize, build, run).
Unknown keys, wrong types and conflicting options are rejected at load time with the
file, the key path and the allowed values. Defaults live here and nowhere else; the
bundle's ``manifest.json`` carries the fully resolved recipe to the device.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgesdk import settings
from edgesdk.errors import ArtifactNotFound, RecipeError

SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- model source


class OnnxSource(_Strict):
    """An ONNX file."""

    format: Literal["onnx"] = "onnx"
    path: str = Field(description="ONNX file, relative to the model directory or absolute")


class DarknetSource(_Strict):
    """A darknet ``.cfg`` with its ``.weights`` (converted with numpy + onnx, no framework)."""

    format: Literal["darknet"] = "darknet"
    cfg: str = Field(description="darknet .cfg, relative to the model directory or absolute")
    weights: str | None = Field(
        default=None, description="darknet .weights; default: the .cfg path with .weights"
    )
    fuse_bn: bool = Field(
        default=True, description="fold BatchNormalization into Conv (False keeps BN for network slimming)"
    )
    opset: int = Field(default=13, ge=11, le=21)


class TorchSource(_Strict):
    """A PyTorch ``nn.Module`` built by a factory (needs the ``torch`` extra)."""

    format: Literal["torch"] = "torch"
    factory: str = Field(description="'package.module:callable' returning an nn.Module")
    weights: str | None = Field(default=None, description="state_dict file loaded into the module")
    opset: int = Field(default=13, ge=11, le=21)

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, value: str) -> str:
        module, sep, attr = value.partition(":")
        if not sep or not module or not attr:
            raise ValueError("must look like 'package.module:callable'")
        return value


ModelSource = Annotated[Union[OnnxSource, DarknetSource, TorchSource], Field(discriminator="format")]


# --------------------------------------------------------------------------- input and pre-processing


class InputSpec(_Strict):
    """The network input."""

    name: str | None = Field(default=None, description="input tensor name; default: the model's first input")
    shape: tuple[int, int, int, int] = Field(description="N, C, H, W (static; batch = N)")

    @field_validator("shape")
    @classmethod
    def _positive(cls, value: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        if any(v <= 0 for v in value):
            raise ValueError("every dimension must be a positive integer (static shape)")
        if value[1] not in (1, 3):
            raise ValueError("channels (second dimension) must be 1 or 3")
        return value

    @property
    def batch(self) -> int:
        return self.shape[0]

    @property
    def hw(self) -> tuple[int, int]:
        return self.shape[2], self.shape[3]


class Preprocess(_Strict):
    """How a camera frame (BGR uint8) becomes the input tensor.

    ``value = (pixel * scale - mean) / std`` per channel, channels in ``color`` order.
    """

    resize: Literal["letterbox", "stretch", "top-left-pad"] = Field(
        default="letterbox",
        description="letterbox: keep aspect, centre, pad; stretch: resize to the input size; "
        "top-left-pad: keep aspect, paste at the top-left, pad right/bottom (YOLOX)",
    )
    pad_value: float = Field(default=114.0, ge=0, le=255)
    color: Literal["rgb", "bgr"] = "rgb"
    scale: float = Field(default=1.0 / 255.0, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: Literal["linear", "nearest", "area", "cubic"] = "linear"

    @field_validator("std")
    @classmethod
    def _nonzero_std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v == 0 for v in value):
            raise ValueError("std must not contain 0")
        return value


# --------------------------------------------------------------------------- post-processing


class _Post(_Strict):
    conf_threshold: float = Field(default=0.25, ge=0.0, le=1.0, description="drop candidates scoring below")
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0, description="NMS IoU")
    max_detections: int = Field(default=300, ge=1, le=100000)
    class_agnostic: bool = Field(default=False, description="one NMS over all classes instead of per class")
    classes: list[str] | Literal["coco80", "face"] = Field(
        default="coco80", description="class names, or a built-in list: coco80, face"
    )


class YoloV3Post(_Post):
    """darknet [yolo] heads (YOLOv3/v4, Yolo-Fastest): raw conv outputs [A*(5+C), H, W] per head."""

    decoder: Literal["yolov3"] = "yolov3"
    anchors: list[list[tuple[float, float]]] = Field(
        description="per head, in model output order: anchor (w, h) in input pixels"
    )
    scale_x_y: float = Field(default=1.0, ge=1.0, le=2.5)


class YoloV5Post(_Post):
    """YOLOv5 export: [N, 5+C] = (cx, cy, w, h in input px, obj, class scores), all decoded."""

    decoder: Literal["yolov5"] = "yolov5"


class YoloV8Post(_Post):
    """YOLOv8 (anchor-free, no objectness): decoded [4+C, N] export, or raw DFL heads per stride."""

    decoder: Literal["yolov8"] = "yolov8"
    dfl: bool = Field(default=False, description="outputs are raw heads [4*reg_max + C, H, W] per stride")
    reg_max: int = Field(default=16, ge=1)
    strides: tuple[int, ...] = (8, 16, 32)


class YoloXPost(_Post):
    """YOLOX: [N, 5+C] = (tx, ty, tw, th raw, obj, class scores sigmoided) over strided grids."""

    decoder: Literal["yolox"] = "yolox"
    strides: tuple[int, ...] = (8, 16, 32)


class RetinaFacePost(_Post):
    """RetinaFace: priors per stride, variances; [N, 4+2+10] concat or (loc, conf, landmarks) outputs."""

    decoder: Literal["retinaface"] = "retinaface"
    classes: list[str] | Literal["coco80", "face"] = "face"
    conf_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.4, ge=0.0, le=1.0)
    steps: tuple[int, ...] = (8, 16, 32)
    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    variances: tuple[float, float] = (0.1, 0.2)
    conf_softmax: bool = Field(default=True, description="conf outputs are logits (apply softmax)")


class CenterFacePost(_Post):
    """CenterFace: heatmap [1,H/4,W/4], scale [2,..], offset [2,..], landmarks [10,..]."""

    decoder: Literal["centerface"] = "centerface"
    classes: list[str] | Literal["coco80", "face"] = "face"
    conf_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    stride: int = Field(default=4, ge=1)


class YuNetPost(_Post):
    """YuNet: cls/obj/bbox/kps per stride, anchor-free."""

    decoder: Literal["yunet"] = "yunet"
    classes: list[str] | Literal["coco80", "face"] = "face"
    conf_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    strides: tuple[int, ...] = (8, 16, 32)
    score: Literal["product", "sqrt"] = Field(
        default="product", description="cls*obj (training repo) or sqrt(cls*obj) (OpenCV FaceDetectorYN)"
    )


class UltraFacePost(_Post):
    """Ultra-Light face: (scores [N,2] softmaxed, boxes [N,4]); boxes decoded in-graph or raw vs priors."""

    decoder: Literal["ultraface"] = "ultraface"
    classes: list[str] | Literal["coco80", "face"] = "face"
    conf_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    boxes_decoded: bool = Field(default=True, description="boxes are normalised x1y1x2y2 already")
    strides: tuple[int, ...] = (8, 16, 32, 64)
    min_boxes: tuple[tuple[int, ...], ...] = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
    variances: tuple[float, float] = (0.1, 0.2)


Postprocess = Annotated[
    Union[
        YoloV3Post,
        YoloV5Post,
        YoloV8Post,
        YoloXPost,
        RetinaFacePost,
        CenterFacePost,
        YuNetPost,
        UltraFacePost,
    ],
    Field(discriminator="decoder"),
]


# --------------------------------------------------------------------------- later stages


class ExportSpec(_Strict):
    """How the exported ONNX is checked against the original."""

    parity_atol: float = Field(default=1e-3, gt=0, description="max abs diff allowed (after rtol)")
    parity_rtol: float = Field(default=1e-3, ge=0)
    parity_images: int = Field(default=4, ge=1, le=64, description="how many images the check runs")


class SlimSpec(_Strict):
    """Channel pruning defaults (issue #6)."""

    enabled: bool = False
    method: Literal["l1", "bn", "thinet", "lasso", "sss"] = "l1"
    ratio: float = Field(default=0.3, gt=0.0, lt=1.0, description="fraction of FLOPs to remove")
    round_to: int = Field(default=8, ge=1, description="kept channel counts are multiples of this")
    scope: Literal["global", "uniform"] = Field(
        default="global", description="one score threshold across layers, or the same fraction per layer"
    )
    images: int = Field(
        default=64, ge=1, le=1024, description="calibration images sampled by thinet/lasso/sss"
    )
    target: Literal["flops", "latency"] = Field(
        default="flops",
        description="what thinet/lasso weigh damage against: flops (least damage per FLOP removed, best "
        "accuracy) or latency (least damage per millisecond of predicted onnxruntime CPU time saved: "
        "faster models at the same FLOPs ratio, more accuracy lost); ratio still counts FLOPs",
    )
    match: Literal["none", "affine", "mean"] = Field(
        default="none",
        description="after the least-squares refit, rescale each refitted conv's output channels so their "
        "mean (and spread: affine) on the calibration images match the unpruned model's (EagleEye-style "
        "statistics matching; helps the face models, not the COCO ones: docs/benchmarks.md)",
    )
    joint: int = Field(
        default=600,
        ge=0,
        le=100_000,
        description="after the least-squares refit, Adam steps fitting each cut conv's kept filters together "
        "with the convs that read them, through the activation between them (0: off; "
        "edgesdk.slim.joint, docs/slim.md)",
    )
    tensor_share: float | None = Field(
        default=None,
        ge=0.0,
        description="thinet/lasso: weight of the output-tensor damage next to the detection damage in the "
        "sensitivity trials (default 0.1); models whose detections on a few images are too coarse a "
        "measure (yolo-fastest, ultraface) plan better with 3-10: docs/benchmarks.md, slimming round 7",
    )


class QuantizeSpec(_Strict):
    """int8 calibration defaults (issue #5)."""

    calibrator: Literal["entropy", "entropy-nozero", "minmax", "percentile", "mse", "mixed"] = Field(
        default="entropy",
        description="entropy: TensorRT EntropyCalibration2 as Migacz describes it; entropy-nozero: the same "
        "with the zero bin emptied first (much better after ReLU); mixed: per tensor, the candidate "
        "threshold that disturbs the consuming layers least (edgesdk.quant.mixed)",
    )
    count: int = Field(default=1000, ge=1, description="calibration images to select")
    percentile: float = Field(default=99.99, gt=50.0, le=100.0)
    mixed_images: int = Field(
        default=8,
        ge=1,
        description="calibration images the mixed calibrator measures each candidate threshold's error on",
    )
    keep_fp: list[str] = Field(default_factory=list, description="node names kept in higher precision")
    keep_fp_auto: int = Field(
        default=0,
        ge=0,
        description="also keep in float the consumers of the K activations whose quantisation alone "
        "hurts the outputs most (measured at calibration; one onnxruntime session per activation)",
    )
    bias_correction: bool = Field(
        default=False,
        description="subtract the mean output shift that int8 weights cause from each quantised "
        "convolution's float bias (empirical bias correction, Nagel et al. 2019)",
    )
    equalize: bool = Field(
        default=False,
        description="cross-layer equalisation before calibration: rescale the channels of activations "
        "between convolutions (through ReLU/LeakyReLU/identity, and depthwise convs) so they share one "
        "int8 range; exact in float. Changes the float model: deploy it with --calibration",
    )
    equalize_strength: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="equalisation balance where a scale also changes the next conv's weights: 1 equalises "
        "the activation ranges fully, 0 leaves them (edgesdk.quant.equalize)",
    )
    weight_rounding: Literal["nearest", "gptq"] = Field(
        default="nearest",
        description="how weights reach the per-channel int8 grid: nearest (TensorRT's own rounding) or "
        "gptq (each layer's rounding errors compensated on calibration activations, Frantar et al. "
        "2022; edgesdk.quant.gptq). gptq changes the float model: deploy it with --calibration",
    )


class BuildSpec(_Strict):
    """Engine build defaults (issue #3)."""

    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    workspace_mb: int = Field(default=1024, ge=16)
    dla_core: int | None = Field(default=None, ge=0)
    gpu_fallback: bool = True


class RunSpec(_Strict):
    """Camera-inference defaults (issue #4)."""

    source: str = "csi://0"
    sinks: list[str] = Field(default_factory=list)


FixSpec = Union[str, dict[str, dict[str, Any]]]


class Recipe(_Strict):
    """One model's recipe. See ``docs/recipes.md`` and ``docs/recipe.schema.json``."""

    schema_version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="short name used on the CLI")
    description: str = ""
    task: Literal["detect", "face"] = "detect"
    model: ModelSource
    input: InputSpec
    preprocess: Preprocess = Preprocess()
    postprocess: Postprocess
    fixes: list[FixSpec] = Field(
        default_factory=lambda: list[FixSpec](["cleanup"]),
        description="graph fixes in order (see `edgesdk fixes`)",
    )
    export: ExportSpec = ExportSpec()
    slim: SlimSpec = SlimSpec()
    quantize: QuantizeSpec = QuantizeSpec()
    build: BuildSpec = BuildSpec()
    run: RunSpec = RunSpec()

    @field_validator("fixes")
    @classmethod
    def _known_fixes(cls, value: list[FixSpec]) -> list[FixSpec]:
        from edgesdk.graph.registry import fix_names

        known = fix_names()
        for item in value:
            if isinstance(item, dict):
                if len(item) != 1:
                    raise ValueError("a fix with parameters is a one-key mapping: {name: {param: value}}")
                name = next(iter(item))
            else:
                name = item
            if name not in known:
                raise ValueError(f"unknown fix {name!r}; known fixes: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        post = self.postprocess
        if self.task == "face" and isinstance(post, (YoloV3Post, YoloV5Post, YoloV8Post, YoloXPost)):
            if post.classes == "coco80":
                raise ValueError("task 'face' with COCO class names: set postprocess.classes: face")
        return self

    def fix_list(self) -> list[tuple[str, dict[str, Any]]]:
        """The fixes as (name, params) pairs, in order."""
        out: list[tuple[str, dict[str, Any]]] = []
        for item in self.fixes:
            if isinstance(item, dict):
                name, params = next(iter(item.items()))
                out.append((name, dict(params or {})))
            else:
                out.append((item, {}))
        return out

    def resolved(self) -> dict[str, Any]:
        """The fully resolved recipe as plain JSON-able data (what the device's manifest carries)."""
        return json.loads(self.model_dump_json())


# --------------------------------------------------------------------------- loading


@functools.cache
def _known_keys() -> tuple[str, ...]:
    """Every key any part of a recipe may have (from the JSON Schema), for spelling suggestions."""
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(Recipe.model_json_schema())
    return tuple(sorted(keys))


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(item["loc"][-1]), _known_keys(), n=1, cutoff=0.75)
            guess = f"did you mean {close[0]!r}? " if close else ""
            msg = f"unknown key ({guess}check the spelling; docs/recipe.schema.json lists every key)"
        lines.append(f"{loc}: {msg}")
    first, rest = lines[0], lines[1:]
    more = f" (+{len(rest)} more: {'; '.join(rest)})" if rest else ""
    return f"{source}: {first}{more}"


def parse_recipe(data: Any, source: str = "<recipe>", hint: str = "fix the recipe and run again") -> Recipe:
    """Validate already-parsed recipe data.

    Raises:
        RecipeError: naming ``source``, the key path and what is allowed.
    """
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a YAML mapping, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(_format_errors(err, source), hint=hint) from err


def load_recipe_file(path: Path) -> Recipe:
    """Load and validate one YAML recipe file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactNotFound(f"recipe file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"cannot read recipe {path}: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from err
    return parse_recipe(data, str(path))


def available_recipes() -> dict[str, Path]:
    """Named recipes: file stem -> path, earlier recipe folders winning."""
    found: dict[str, Path] = {}
    for folder in settings.recipe_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found.setdefault(path.stem, path)
    return found


def find_recipe(name_or_path: str) -> Path:
    """Resolve a recipe given by name (``yolox-nano``) or by path.

    Raises:
        RecipeError: unknown name; lists the known ones.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ArtifactNotFound(f"recipe file {candidate} does not exist")
        return candidate
    known = available_recipes()
    if name_or_path in known:
        return known[name_or_path]
    names = ", ".join(sorted(known)) or "(none found)"
    raise RecipeError(
        f"no recipe named {name_or_path!r}", hint=f"known recipes: {names}; or give a path to a .yaml file"
    )


def load_recipe(name_or_path: str) -> Recipe:
    """Find and load a recipe by name or path."""
    return load_recipe_file(find_recipe(name_or_path))


def override(recipe: Recipe, updates: dict[str, Any], source: str = "command line") -> Recipe:
    """A copy of ``recipe`` with dotted-key ``updates`` (``{"build.precision": "int8"}``), re-validated.

    Raises:
        RecipeError: the result does not validate (names the key, as for a file).
    """
    data = recipe.resolved()
    for dotted, value in updates.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return parse_recipe(data, f"{recipe.name} ({source})", hint=f"check the value given with {source}")


def json_schema() -> dict[str, Any]:
    """The recipe JSON Schema, generated from the models (``docs/recipe.schema.json``)."""
    schema = Recipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edgesdk recipe"
    return schema
