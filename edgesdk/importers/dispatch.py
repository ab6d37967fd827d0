"""From a recipe to an ``onnx.ModelProto``: resolve the model files, then call the format's importer.

Relative paths in a recipe are resolved against ``model_dir`` (default
:func:`edgesdk.settings.model_dir`, i.e. ``EDGESDK_MODEL_DIR``). ``model`` overrides the
recipe's file (relative to the working directory): the ONNX file, the darknet ``.cfg``
(or, if it ends in ``.weights``, the darknet weights with the recipe's cfg), or the torch
state_dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import onnx

from edgesdk import settings
from edgesdk.errors import ArtifactNotFound, EdgeSdkInternalError, RecipeError
from edgesdk.importers.darknet import darknet_to_onnx
from edgesdk.importers.onnx_file import load_onnx
from edgesdk.importers.torch_module import torch_to_onnx
from edgesdk.recipe import DarknetSource, OnnxSource, Recipe, TorchSource

ImportHandler = Callable[[Recipe, Optional[Path], Optional[Path]], onnx.ModelProto]
_HANDLERS: dict[str, ImportHandler] = {}
_HINT = "put the file there, point EDGESDK_MODEL_DIR (or --model-dir) at its folder, or pass --model"


def _handler(fmt: str) -> Callable[[ImportHandler], ImportHandler]:
    def wrap(fn: ImportHandler) -> ImportHandler:
        if fmt in _HANDLERS:
            raise EdgeSdkInternalError(f"importer for format {fmt!r} registered twice")
        _HANDLERS[fmt] = fn
        return fn

    return wrap


def formats() -> list[str]:
    """The model formats :func:`import_model` understands."""
    return sorted(_HANDLERS)


def locate(raw: str, model_dir: Path | None = None) -> Path:
    """A recipe's model path resolved against ``model_dir`` (default ``EDGESDK_MODEL_DIR``); not checked."""
    path = Path(raw).expanduser()
    return (
        path
        if path.is_absolute()
        else (settings.model_dir() if model_dir is None else Path(model_dir)) / path
    )


def _from_recipe(recipe: Recipe, key: str, raw: str, model_dir: Path | None) -> Path:
    path = locate(raw, model_dir)
    base = settings.model_dir() if model_dir is None else Path(model_dir)
    if not path.is_file():
        raise ArtifactNotFound(
            f"{path} does not exist (recipe {recipe.name!r}: model.{key}={raw!r}, model dir {base})",
            hint=_HINT,
        )
    return path


def _given(model: Path, what: str) -> Path:
    path = Path(model).expanduser()
    if not path.is_file():
        raise ArtifactNotFound(f"{what} {path} (given to override the recipe's model) does not exist")
    return path


def resolve_model_path(recipe: Recipe, model_dir: Path | None = None, model: Path | None = None) -> Path:
    """The recipe's main model file: the ONNX file, the darknet ``.cfg`` or the torch weights.

    Args:
        recipe: the validated recipe.
        model_dir: folder for relative recipe paths (default: ``settings.model_dir()``).
        model: a file overriding the recipe's (see the module docstring).

    Raises:
        ArtifactNotFound: the file does not exist (the message shows how it was resolved).
        RecipeError: a torch recipe without ``model.weights`` and no ``model`` (no file).
    """
    src = recipe.model
    if isinstance(src, DarknetSource):
        if model is not None and Path(model).suffix != ".weights":
            return _given(model, "darknet cfg")
        return _from_recipe(recipe, "cfg", src.cfg, model_dir)
    if model is not None:
        return _given(model, "model file")
    if isinstance(src, OnnxSource):
        return _from_recipe(recipe, "path", src.path, model_dir)
    if src.weights is None:
        raise RecipeError(f"recipe {recipe.name!r}: the torch model has no file (model.weights is not set)")
    return _from_recipe(recipe, "weights", src.weights, model_dir)


def resolve_weights_path(
    recipe: Recipe, model_dir: Path | None = None, model: Path | None = None
) -> Path | None:
    """The weights file beside the main file: darknet ``.weights``, torch state_dict, None for ONNX.

    darknet: ``model`` ending in ``.weights`` wins; else the ``.weights`` beside an overriding
    ``model`` cfg; else the recipe's ``model.weights``; else the recipe cfg's path with
    ``.weights``. torch: ``model``, else ``model.weights`` (None when unset).

    Raises:
        ArtifactNotFound: the weights do not exist.
    """
    src = recipe.model
    if isinstance(src, OnnxSource):
        return None
    if isinstance(src, TorchSource):
        if model is None and src.weights is None:
            return None
        return resolve_model_path(recipe, model_dir, model)
    if model is not None:
        given = Path(model)
        return _given(
            given if given.suffix == ".weights" else given.with_suffix(".weights"), "darknet weights"
        )
    if src.weights is not None:
        return _from_recipe(recipe, "weights", src.weights, model_dir)
    cfg = resolve_model_path(recipe, model_dir)
    weights = cfg.with_suffix(".weights")
    if not weights.is_file():
        raise ArtifactNotFound(
            f"{weights} does not exist (recipe {recipe.name!r} sets no model.weights, so it is the "
            f"cfg's name with .weights)",
            hint="put the weights beside the cfg or set model.weights in the recipe",
        )
    return weights


@_handler("onnx")
def _import_onnx(recipe: Recipe, model_dir: Path | None, model: Path | None) -> onnx.ModelProto:
    path = resolve_model_path(recipe, model_dir, model)
    loaded = load_onnx(path)
    name = recipe.input.name
    initializers = {i.name for i in loaded.graph.initializer}
    inputs = [i.name for i in loaded.graph.input if i.name not in initializers]
    if name is not None and name not in inputs:
        raise RecipeError(
            f"recipe {recipe.name!r}: input.name {name!r} is not an input of {path} (inputs: {inputs})"
        )
    return loaded


@_handler("darknet")
def _import_darknet(recipe: Recipe, model_dir: Path | None, model: Path | None) -> onnx.ModelProto:
    src = recipe.model
    if not isinstance(src, DarknetSource):
        raise EdgeSdkInternalError(f"darknet importer called for a {src.format} recipe")
    cfg = resolve_model_path(recipe, model_dir, model)
    weights = resolve_weights_path(recipe, model_dir, model)
    if weights is None:
        raise EdgeSdkInternalError("darknet weights resolved to None")
    out = darknet_to_onnx(cfg, weights, fuse_bn=src.fuse_bn, opset=src.opset, batch=recipe.input.batch)
    graph_input = out.graph.input[0]
    dims = tuple(d.dim_value for d in graph_input.type.tensor_type.shape.dim)
    if dims != recipe.input.shape:
        raise RecipeError(
            f"recipe {recipe.name!r}: input.shape {list(recipe.input.shape)} but {cfg.name} [net] gives "
            f"{list(dims)} (batch, channels, height, width)",
            hint=f"set input.shape: {list(dims)} in the recipe (or width/height in the cfg)",
        )
    if recipe.input.name not in (None, graph_input.name):
        raise RecipeError(f"recipe {recipe.name!r}: darknet models' input is named {graph_input.name!r}")
    return out


@_handler("torch")
def _import_torch(recipe: Recipe, model_dir: Path | None, model: Path | None) -> onnx.ModelProto:
    src = recipe.model
    if not isinstance(src, TorchSource):
        raise EdgeSdkInternalError(f"torch importer called for a {src.format} recipe")
    weights = resolve_weights_path(recipe, model_dir, model)
    return torch_to_onnx(src.factory, weights, recipe.input.shape, src.opset)


def import_model(
    recipe: Recipe, *, model_dir: Path | None = None, model: Path | None = None
) -> onnx.ModelProto:
    """Import the recipe's model as an ONNX ModelProto, dispatching on ``recipe.model.format``.

    Args:
        recipe: the validated recipe.
        model_dir: folder for relative recipe paths (default: ``settings.model_dir()``).
        model: a file overriding the recipe's (see the module docstring).

    Returns:
        The checked model (darknet: input ``images`` with the recipe's batch; see
        :func:`edgesdk.importers.darknet.darknet_to_onnx`).

    Raises:
        ArtifactNotFound: a model file is missing.
        ModelFormatError: a file is corrupt, truncated or inconsistent.
        RecipeError: the recipe disagrees with the model (input shape or name).
        MissingDependencyError: a torch recipe without torch installed.
    """
    handler = _HANDLERS.get(recipe.model.format)
    if handler is None:
        raise RecipeError(
            f"model.format {recipe.model.format!r} has no importer; known: {', '.join(formats())}"
        )
    return handler(recipe, model_dir, model)
