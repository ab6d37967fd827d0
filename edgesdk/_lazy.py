"""Import optional heavy packages only where they are used, with an error that says how to get them."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgesdk.errors import MissingDependencyError


def require(module: str, *, feature: str, hint: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError`.

    Args:
        module: dotted module name, e.g. ``"torch"``.
        feature: what the user tried to do, e.g. ``"importing a PyTorch module"``.
        hint: how to install it, e.g. ``"pip install 'edgesdk[torch]'"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{feature} needs the Python package '{module}', which is not installed", hint=hint
        ) from err
