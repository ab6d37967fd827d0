"""The runtime protocol every backend implements (TensorRT on Jetson, onnxruntime elsewhere).

Template method: :meth:`Backend.infer` checks state, names, shapes and dtypes once, then
calls the backend's ``_infer_impl``; backends cannot forget the checks.
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np


class BackendError(RuntimeError):
    """A backend cannot build, load or run (message says what to do)."""


class TensorSpec(NamedTuple):
    """A named input or output: static shape and numpy dtype name (e.g. ``"float32"``)."""

    name: str
    shape: Tuple[int, ...]
    dtype: str


class Backend:
    """Base class: ``activate`` → ``infer`` … → ``deactivate`` (or use it as a context manager).

    Subclasses set ``name`` and implement ``_activate_impl``, ``_infer_impl``,
    ``_deactivate_impl``; after activation ``self.inputs``/``self.outputs`` describe the tensors.
    """

    name = "base"

    def __init__(self) -> None:
        self.inputs: List[TensorSpec] = []
        self.outputs: List[TensorSpec] = []
        self._active = False

    # -- lifecycle
    def activate(self) -> Backend:
        if not self._active:
            self._activate_impl()
            self._active = True
        return self

    def deactivate(self) -> None:
        if self._active:
            self._deactivate_impl()
            self._active = False

    def __enter__(self) -> Backend:
        return self.activate()

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    @property
    def active(self) -> bool:
        return self._active

    @property
    def runs_on_cpu(self) -> bool:
        """True when inference computes on the host CPU (it then competes with the pipeline's
        other stages for cores); False for GPU/DLA engines. Valid after activation."""
        return False

    # -- inference
    def infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run one batch.

        Args:
            feed: input name → array with exactly the input's shape and dtype.

        Returns:
            output name → array, in the engine's output order.

        Raises:
            BackendError: not active, unknown/missing input, wrong shape or dtype.
        """
        if not self._active:
            raise BackendError(f"{self.name} backend is not active: call activate() first")
        expected = {spec.name: spec for spec in self.inputs}
        unknown = sorted(set(feed) - set(expected))
        missing = sorted(set(expected) - set(feed))
        if unknown or missing:
            raise BackendError(f"inputs: expected {sorted(expected)}, missing {missing}, unknown {unknown}")
        checked: Dict[str, np.ndarray] = {}
        for name, spec in expected.items():
            array = feed[name]
            if not _shape_fits(tuple(array.shape), spec.shape):
                raise BackendError(f"input {name!r}: shape {tuple(array.shape)}, engine expects {spec.shape}")
            if array.dtype != np.dtype(spec.dtype):
                raise BackendError(f"input {name!r}: dtype {array.dtype}, engine expects {spec.dtype}")
            checked[name] = np.ascontiguousarray(array)
        return self._infer_impl(checked)

    # -- to implement
    def _activate_impl(self) -> None:
        raise NotImplementedError

    def _infer_impl(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _deactivate_impl(self) -> None:
        raise NotImplementedError


def _shape_fits(actual: Tuple[int, ...], expected: Tuple[int, ...]) -> bool:
    """Exact match, where -1 in ``expected`` (a dynamic dimension) accepts any size."""
    return len(actual) == len(expected) and all(e in (-1, a) for a, e in zip(actual, expected))


def spec_by_name(specs: List[TensorSpec], name: str) -> Optional[TensorSpec]:
    """The spec called ``name``, or None."""
    for spec in specs:
        if spec.name == name:
            return spec
    return None
