"""Turn user errors into one line plus a hint (most specific type first)."""

from __future__ import annotations

from edgesdk.errors import (
    ArtifactNotFound,
    DatasetError,
    DeviceError,
    EdgeSdkError,
    MissingDependencyError,
    ModelFormatError,
    RecipeError,
)

# (type, default hint when the error carries none)
CLI_ERROR_MAPPINGS: list[tuple[type[EdgeSdkError], str]] = [
    (MissingDependencyError, "install the named extra, or run this on a machine that has the package"),
    (RecipeError, "docs/recipes.md explains every key; `edgesdk recipes` lists the shipped ones"),
    (ArtifactNotFound, "check the path, or set --model-dir / EDGESDK_MODEL_DIR"),
    (ModelFormatError, "re-download or re-export the model file"),
    (DatasetError, "point --data at a folder of images (with YOLO-format labels for eval)"),
    # the agent's own message says what went wrong on the device; --debug here would add only the
    # host's traceback, so no generic hint
    (DeviceError, ""),
    (EdgeSdkError, "run with --debug for details"),
]


def format_error(err: EdgeSdkError) -> tuple[str, str]:
    """The one-line message and the hint for ``err``."""
    message = " ".join(str(err).split()) or type(err).__name__
    hint = err.hint
    if hint is None:
        for kind, default in CLI_ERROR_MAPPINGS:
            if isinstance(err, kind):
                hint = default
                break
    return message, hint or ""
