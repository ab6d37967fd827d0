"""Parity: compare a fixed/exported model with its original on onnxruntime (CPU).

An element passes when ``|test - ref| <= atol + rtol * |ref|`` (``numpy.allclose``
semantics); an output passes when every element does and the shapes match. NaN in both at
the same place counts as equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesdk.errors import GraphError, ParityError

if TYPE_CHECKING:
    import onnx


@dataclass
class OutputDiff:
    """How one output differs, over every feed compared.

    Attributes:
        name: output name in the reference model.
        test_name: the matching output of the test model (differs after ``rename-outputs``).
        ref_shape: reference shape (of the last feed).
        test_shape: test shape (of the last feed).
        shape_match: shapes equal for every feed.
        max_abs: largest ``|test - ref|``.
        mean_abs: mean ``|test - ref|``.
        p99_abs: 99th percentile of ``|test - ref|``.
        max_rel: largest ``|test - ref| / max(|ref|, 1e-12)``.
        mismatched: number of elements outside ``atol + rtol * |ref|``.
        elements: number of elements compared.
        passed: shapes match and no element is outside the tolerance.
    """

    name: str
    test_name: str
    ref_shape: tuple[int, ...]
    test_shape: tuple[int, ...]
    shape_match: bool
    max_abs: float
    mean_abs: float
    p99_abs: float
    max_rel: float
    mismatched: int
    elements: int
    passed: bool


@dataclass
class ParityResult:
    """The outcome of a parity check: per-output numbers and an overall verdict."""

    outputs: list[OutputDiff]
    atol: float
    rtol: float
    feeds: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every output passed."""
        return bool(self.outputs) and all(o.passed for o in self.outputs)

    @property
    def max_abs(self) -> float:
        """Largest absolute difference over all outputs."""
        return max((o.max_abs for o in self.outputs), default=0.0)

    def summary(self) -> str:
        """One line: verdict, worst output and its numbers, tolerance."""
        if not self.outputs:
            return "no outputs compared"
        worst = max(self.outputs, key=lambda o: (not o.passed, o.max_abs))
        verdict = "PASS" if self.passed else "FAIL"
        shape = "" if worst.shape_match else f", shape {worst.test_shape} != {worst.ref_shape}"
        return (
            f"{verdict}: {len(self.outputs)} output(s) on {self.feeds} input(s); worst {worst.name!r}"
            f" max_abs {worst.max_abs:.3g}, p99 {worst.p99_abs:.3g}, max_rel {worst.max_rel:.3g},"
            f" {worst.mismatched}/{worst.elements} outside atol {self.atol:g} + rtol {self.rtol:g}{shape}"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data (``--json``, reports)."""
        return {
            "passed": self.passed,
            "atol": self.atol,
            "rtol": self.rtol,
            "feeds": self.feeds,
            "max_abs": self.max_abs,
            "outputs": [
                {**asdict(o), "ref_shape": list(o.ref_shape), "test_shape": list(o.test_shape)}
                for o in self.outputs
            ],
            "notes": list(self.notes),
        }

    def raise_if_failed(self, what: str = "model") -> None:
        """Raise :class:`ParityError` with :meth:`summary` when the check failed."""
        if not self.passed:
            raise ParityError(f"{what} differs from the original: {self.summary()}")


class _Accumulator:
    """Collects |diff| statistics for one output across feeds."""

    def __init__(self, name: str, test_name: str) -> None:
        self.name, self.test_name = name, test_name
        self.diffs: list[np.ndarray] = []
        self.max_rel = 0.0
        self.mismatched = 0
        self.shape_match = True
        self.ref_shape: tuple[int, ...] = ()
        self.test_shape: tuple[int, ...] = ()

    def add(self, ref: np.ndarray, test: np.ndarray, atol: float, rtol: float) -> None:
        ref, test = np.asarray(ref), np.asarray(test)
        self.ref_shape, self.test_shape = tuple(ref.shape), tuple(test.shape)
        if ref.shape != test.shape:
            self.shape_match = False
            return
        a, b = ref.astype(np.float64, copy=False), test.astype(np.float64, copy=False)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(b - a))
        diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only: infinitely wrong
        self.diffs.append(diff.reshape(-1))
        if diff.size:
            self.max_rel = max(self.max_rel, float(np.max(diff / np.maximum(np.abs(a), 1e-12))))
        self.mismatched += int(np.count_nonzero(diff > atol + rtol * np.abs(np.nan_to_num(a))))

    def result(self) -> OutputDiff:
        flat = np.concatenate(self.diffs) if self.diffs else np.zeros(0)
        has = flat.size > 0
        return OutputDiff(
            name=self.name,
            test_name=self.test_name,
            ref_shape=self.ref_shape,
            test_shape=self.test_shape,
            shape_match=self.shape_match,
            max_abs=float(flat.max()) if has else 0.0,
            mean_abs=float(flat.mean()) if has else 0.0,
            p99_abs=float(np.percentile(flat, 99, method="higher")) if has else 0.0,
            max_rel=self.max_rel,
            mismatched=self.mismatched,
            elements=int(flat.size),
            passed=self.shape_match and self.mismatched == 0,
        )


def match_outputs(ref_names: Sequence[str], test_names: Sequence[str]) -> list[tuple[str, str]]:
    """Pair reference and test outputs: by name when the name sets are equal, else by position.

    Raises:
        GraphError: different numbers of outputs (they cannot be paired).
    """
    if set(ref_names) == set(test_names):
        return [(n, n) for n in ref_names]
    if len(ref_names) != len(test_names):
        raise GraphError(
            f"cannot compare outputs: reference has {list(ref_names)}, test has {list(test_names)}",
            hint="parity needs the same outputs (a fix such as efficient-nms changes them)",
        )
    return list(zip(ref_names, test_names))


def _compare_many(
    pairs: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]], atol: float, rtol: float
) -> ParityResult:
    if not pairs:
        raise GraphError("parity check needs at least one set of outputs")
    matched = match_outputs(list(pairs[0][0]), list(pairs[0][1]))
    accs = [_Accumulator(r, t) for r, t in matched]
    for ref, test in pairs:
        for acc in accs:
            acc.add(ref[acc.name], test[acc.test_name], atol, rtol)
    return ParityResult([a.result() for a in accs], atol=atol, rtol=rtol, feeds=len(pairs))


def compare_outputs(
    ref: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], *, atol: float = 1e-3, rtol: float = 1e-3
) -> ParityResult:
    """Compare two sets of outputs (from one input).

    Args:
        ref: reference outputs by name.
        test: test outputs by name (matched by name, or by position when names differ).
        atol: absolute tolerance.
        rtol: relative tolerance (times ``|ref|``).

    Raises:
        GraphError: the outputs cannot be paired.
    """
    return _compare_many([(ref, test)], atol, rtol)


def check_parity(
    ref_model: onnx.ModelProto,
    test_model: onnx.ModelProto,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    atol: float = 1e-3,
    rtol: float = 1e-3,
) -> ParityResult:
    """Run both models on onnxruntime (CPU) for every feed and compare the outputs.

    Args:
        ref_model: the original model.
        test_model: the fixed/exported model.
        feeds: inputs by name, e.g. ``[{"images": float32 NCHW}]``; each model takes the
            entries it has inputs for.
        atol: absolute tolerance.
        rtol: relative tolerance.

    Raises:
        GraphError: no feeds, a model does not run, or the outputs cannot be paired.
        MissingDependencyError: onnxruntime is missing.
    """
    from edgesdk.graph.io import onnxruntime_runner

    if not feeds:
        raise GraphError("parity check needs at least one input feed")
    run_ref, run_test = onnxruntime_runner(ref_model), onnxruntime_runner(test_model)
    pairs = [(run_ref(feed), run_test(feed)) for feed in feeds]
    return _compare_many(pairs, atol, rtol)
