"""PyTorch ``nn.Module`` -> ONNX, only when torch is installed (the ``edgesdk[torch]`` extra).

torch is imported inside :func:`torch_to_onnx`, so importing this module never needs it.
The export uses torch's TorchScript-based exporter (``dynamo=False`` where torch has the
switch): it needs no extra packages, unlike the dynamo exporter (onnxscript).
"""

from __future__ import annotations

import importlib
import inspect
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

import edgesdk
from edgesdk._lazy import require
from edgesdk.errors import ArtifactNotFound, ModelFormatError, RecipeError

TORCH_HINT = "pip install 'edgesdk[torch]'"
INPUT_NAME = "images"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_factory(factory: str) -> Any:
    """The callable named ``'package.module:attr'`` (``attr`` may be dotted).

    Raises:
        RecipeError: malformed name, module not importable, or attribute missing.
    """
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr:
        raise RecipeError(f"torch factory {factory!r} must look like 'package.module:callable'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise RecipeError(
            f"cannot import {module_name!r} for the torch factory {factory!r}: {_first_line(err)}",
            hint="install the package that defines the model, or add its folder to PYTHONPATH",
        ) from err
    for part in attr.split("."):
        if not hasattr(target, part):
            raise RecipeError(f"torch factory {factory!r}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise RecipeError(f"torch factory {factory!r} is not callable")
    return target


def _state_dict(torch: Any, weights: Path) -> dict[str, Any]:
    if not weights.is_file():
        raise ArtifactNotFound(f"torch weights {weights} do not exist")
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors alike
        raise ModelFormatError(
            f"{weights} is not a loadable torch state_dict ({_first_line(err)})",
            hint="save it with torch.save(model.state_dict(), path)",
        ) from err
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelFormatError(f"{weights} holds a {type(state).__name__}, not a state_dict")
    return state


def _build(torch: Any, factory: str, weights: Path | None) -> Any:
    try:
        module = load_factory(factory)()
    except RecipeError:
        raise
    except Exception as err:
        raise RecipeError(
            f"torch factory {factory!r} raised {type(err).__name__}: {_first_line(err)}"
        ) from err
    if not isinstance(module, torch.nn.Module):
        raise RecipeError(f"torch factory {factory!r} returned a {type(module).__name__}, not an nn.Module")
    if weights is not None:
        try:
            module.load_state_dict(_state_dict(torch, weights))
        except RuntimeError as err:
            raise ModelFormatError(
                f"{weights} does not fit the module from {factory!r}: {_first_line(err)}",
                hint="check that the weights were saved from the same architecture",
            ) from err
    return module.eval()


def _output_names(torch: Any, module: Any, dummy: Any) -> list[str]:
    with torch.no_grad():
        out = module(dummy)
    count = len(out) if isinstance(out, (tuple, list)) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def torch_to_onnx(
    factory: str, weights: Path | None, input_shape: Sequence[int], opset: int = 13
) -> onnx.ModelProto:
    """Export a PyTorch module to ONNX.

    Args:
        factory: ``'package.module:callable'`` returning an ``nn.Module``.
        weights: a ``state_dict`` file (``torch.save(model.state_dict())``; dicts under a
            ``state_dict``/``model`` key are unwrapped), or None to keep the factory's weights.
        input_shape: static input shape, e.g. (N, C, H, W); float32.
        opset: ONNX opset for the exporter.

    Returns:
        A checked model with input ``images`` and outputs ``output`` (one) or
        ``output_0``, ``output_1``, ... (a tuple/list), in eval mode with constants folded;
        ``metadata_props`` has ``source=torch`` and the factory.

    Raises:
        MissingDependencyError: torch is not installed (names the ``edgesdk[torch]`` extra).
        RecipeError: the factory cannot be imported or called, or the shape is invalid.
        ArtifactNotFound: ``weights`` does not exist.
        ModelFormatError: the weights do not load into the module, or the export fails.
    """
    torch = require("torch", feature="importing a PyTorch module (the edgesdk[torch] extra)", hint=TORCH_HINT)
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d <= 0 for d in shape):
        raise RecipeError(f"input shape {list(input_shape)} must be positive integers")
    module = _build(torch, factory, None if weights is None else Path(weights))
    dummy = torch.zeros(shape, dtype=torch.float32)
    names = _output_names(torch, module, dummy)
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                module, (dummy,), buffer, opset_version=opset, input_names=[INPUT_NAME],
                output_names=names, do_constant_folding=True, **extra,
            )  # fmt: skip
    except Exception as err:
        raise ModelFormatError(f"torch.onnx.export failed for {factory!r}: {_first_line(err)}") from err
    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(
        model, {"source": "torch", "torch_factory": factory, "edgesdk_version": edgesdk.__version__}
    )
    onnx.checker.check_model(model)
    return model
