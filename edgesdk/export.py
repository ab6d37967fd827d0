"""Export: recipe → import → graph fixes → parity check → ONNX file.

The exported model is checked against the imported original with onnxruntime on real
images pre-processed by the recipe (the device's own pre-processing code). The check
fails above the recipe's tolerance (``export.parity_atol`` / ``parity_rtol``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeagent.files import sha256_file
from edgesdk import __version__
from edgesdk.errors import ArtifactNotFound, DatasetError, ParityError
from edgesdk.graph.registry import FixContext
from edgesdk.recipe import Recipe, TorchSource

if TYPE_CHECKING:
    import onnx

    from edgesdk.graph.parity import ParityResult

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

ProgressFn = Callable[[str], None]

GRAPH_SECTIONS = ("model", "input", "fixes")
"""Recipe sections that determine the exported graph (hashed into its provenance)."""


@dataclass
class ExportResult:
    """What an export produced.

    Attributes:
        model: the exported model (fixes applied, metadata set).
        source: the model file it came from (cfg for darknet).
        fixes: names of the fixes applied, in order.
        parity: the onnxruntime comparison against the imported model (None if skipped).
        parity_inputs: what the parity check ran on ("N images from DIR" or "synthetic").
        seconds: wall time of the whole export.
        path: where it was written (None if not written).
    """

    model: onnx.ModelProto
    source: Path
    fixes: list[str]
    parity: ParityResult | None
    parity_inputs: str
    seconds: float
    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "path": str(self.path) if self.path else None,
            "source": str(self.source),
            "fixes": self.fixes,
            "parity": self.parity.to_json() if self.parity is not None else None,
            "parity_inputs": self.parity_inputs,
            "seconds": round(self.seconds, 3),
            "metadata": self.metadata,
        }


def fix_context(recipe: Recipe) -> FixContext:
    """The context every fix of ``recipe`` sees."""
    resolved = recipe.resolved()
    return FixContext(
        input_shape=recipe.input.shape,
        input_name=recipe.input.name,
        postprocess=resolved["postprocess"],
    )


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """Image files in ``folder`` (recursively), sorted by path.

    Raises:
        ArtifactNotFound: the folder does not exist.
        DatasetError: it holds no images.
    """
    if not folder.is_dir():
        raise ArtifactNotFound(
            f"image folder {folder} does not exist",
            hint="give a folder of .jpg/.png images (searched recursively), e.g. data/coco128/images",
        )
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths[:limit] if limit else paths


def _synthetic_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Structured BGR test images (gradients, blocks, noise) when no real images are given."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        h, w = 480 + 40 * i, 640
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (w + h) * 255], axis=-1)
        for _ in range(8):
            x0, y0 = int(rng.integers(0, w - 64)), int(rng.integers(0, h - 64))
            base[y0 : y0 + int(rng.integers(16, 160)), x0 : x0 + int(rng.integers(16, 160))] = rng.integers(
                0, 256, 3
            )
        base += rng.normal(0, 8, base.shape)
        images.append(np.clip(base, 0, 255).astype(np.uint8))
    return images


def parity_feeds(recipe: Recipe, images: Sequence[Path] | None, input_name: str) -> tuple[list[dict], str]:
    """Input feeds for the parity check, pre-processed exactly as the device will.

    Returns:
        (feeds, description). Feeds are ``{input_name: NCHW float32}`` with the recipe's batch size.
    """
    import cv2

    from edgeagent.vision.preprocess import preprocess_batch

    count = recipe.export.parity_images
    if images:
        frames = []
        for path in list(images)[:count]:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DatasetError(f"cannot read image {path} (not an image, or truncated)")
            frames.append(frame)
        described = f"{len(frames)} image(s) from {Path(images[0]).parent}"
    else:
        frames = _synthetic_images(count)
        described = f"{len(frames)} synthetic image(s)"
    params = recipe.resolved()["preprocess"]
    batch = recipe.input.batch
    feeds = []
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        chunk += [chunk[-1]] * (batch - len(chunk))  # a fixed-batch model needs full batches
        tensor, _ = preprocess_batch(chunk, recipe.input.hw, params)
        feeds.append({input_name: tensor})
    return feeds, described


PLUGIN_FIXES = ("efficient-nms",)
"""Fixes that add TensorRT plugin nodes onnxruntime cannot run: applied after the parity check."""


def split_plugin_fixes(
    fixes: list[tuple[str, dict[str, Any]]],
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """Split the fix list at the first plugin fix: (checked by parity, applied after it)."""
    for index, (name, _params) in enumerate(fixes):
        if name in PLUGIN_FIXES:
            return fixes[:index], fixes[index:]
    return fixes, []


def _provenance(recipe: Recipe, source: Path, fixes: list[str]) -> dict[str, str]:
    # Only the sections that shape the graph: changing run thresholds or the build precision
    # must not change the model's bytes (the device would be sent the same model again).
    resolved = recipe.resolved()
    shaping = {key: resolved[key] for key in GRAPH_SECTIONS}
    recipe_json = json.dumps(shaping, sort_keys=True).encode()
    return {
        "edgesdk.version": __version__,
        "edgesdk.recipe": recipe.name,
        "edgesdk.graph_recipe_sha256": hashlib.sha256(recipe_json).hexdigest(),
        "edgesdk.source_sha256": sha256_file(source) if source.is_file() else "",
        "edgesdk.fixes": ",".join(fixes),
    }


def export_recipe(
    recipe: Recipe,
    *,
    model_dir: Path | None = None,
    model: Path | None = None,
    check_parity: bool = True,
    parity_images: Sequence[Path] | None = None,
    output: Path | None = None,
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Import the recipe's model, apply its fixes, check parity, and optionally write it.

    Args:
        recipe: the validated recipe.
        model_dir: folder for relative model paths (default: settings).
        model: a model file overriding the recipe's.
        check_parity: compare the fixed model with the imported one on onnxruntime.
        parity_images: real images for the check (default: synthetic ones).
        output: write the model here (atomically) when given.
        progress: called with a short phase name as the export advances.

    Raises:
        ParityError: outputs differ beyond the recipe's tolerance (the file is not written).
    """
    from edgesdk.graph.io import save_model, set_metadata
    from edgesdk.graph.pipeline import apply_fixes
    from edgesdk.importers import import_model, resolve_model_path

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    spec = recipe.model
    if isinstance(spec, TorchSource) and spec.weights is None and model is None:
        source = Path(spec.factory)  # a factory with no weights file: provenance is the factory name
    else:
        source = resolve_model_path(recipe, model_dir=model_dir, model=model)
    say("import")
    original = import_model(recipe, model_dir=model_dir, model=model)
    say("fixes")
    ctx = fix_context(recipe)
    checked, plugin_fixes = split_plugin_fixes(recipe.fix_list())
    fixed, applied = apply_fixes(original, checked, ctx)
    parity = None
    described = "skipped"
    if check_parity:
        say("parity")
        from edgesdk.graph.parity import check_parity as run_parity

        input_name = recipe.input.name or original.graph.input[0].name
        feeds, described = parity_feeds(recipe, parity_images, input_name)
        parity = run_parity(
            original, fixed, feeds, atol=recipe.export.parity_atol, rtol=recipe.export.parity_rtol
        )
        if not parity.passed:
            raise ParityError(
                f"{recipe.name}: exported model differs from the original: {parity.summary()}",
                hint="drop the fix that changed the numbers from the recipe's `fixes`, "
                "or raise export.parity_atol",
            )
    if plugin_fixes:  # after parity: onnxruntime cannot run TensorRT plugin nodes
        fixed, more = apply_fixes(fixed, plugin_fixes, ctx)
        applied += more
        if parity is not None:
            described += f" (checked before {', '.join(name for name, _ in plugin_fixes)})"
    metadata = _provenance(recipe, source, applied)
    fixed = set_metadata(fixed, metadata)
    result = ExportResult(
        fixed, source, applied, parity, described, time.perf_counter() - started, None, metadata
    )
    if output is not None:
        say("write")
        if output.parent and not output.parent.exists():
            output.parent.mkdir(parents=True, exist_ok=True)
        save_model(fixed, output)
        result.path = output
    return result


def default_output(recipe: Recipe) -> Path:
    """Where ``edgesdk export`` writes when no ``-o`` is given."""
    return Path("out") / f"{recipe.name}.onnx"
