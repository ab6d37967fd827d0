"""Optional PyTorch helpers for users who train before they slim (``pip install 'edgesdk[torch]'``).

Structured pruning without fine-tuning hurts small detectors (see docs/benchmarks.md). Training
with a sparsity penalty first pushes the unimportant structures towards zero, so that
``edgesdk slim`` removes them almost for free afterwards:

* **Network Slimming** (Liu et al. 2017): an L1 penalty on every BatchNorm ``gamma``; then
  ``edgesdk slim RECIPE --method bn`` on the exported (BN kept) model. :func:`update_bn` is
  the usual ``updateBN`` step: after ``loss.backward()``, add ``s * sign(gamma)`` to the
  gradient of each BN weight (``s`` = 1e-4 by default, as in the paper's code).
* **Sparse Structure Selection** (Huang & Wang 2018): a learnable scale on each residual
  branch (``x + lambda * F(x)``) with an L1 penalty; branches whose scale reaches ~0 are
  removed by ``edgesdk slim RECIPE --method sss --images DIR``. Wrap branches with
  :func:`branch_scale` and add :func:`sss_penalty` to the loss.

A training loop with both::

    from edgesdk.torch_helpers import branch_scale, sss_penalty, update_bn

    # in the model: out = x + self.scale(self.branch(x)), with self.scale = branch_scale()
    for images, targets in loader:
        loss = criterion(model(images), targets) + sss_penalty(model, s=1e-4)
        optimizer.zero_grad()
        loss.backward()
        update_bn(model, s=1e-4)  # Network Slimming: L1 on BN gamma (sub-gradient)
        optimizer.step()

torch is imported when a helper is called, never at import time.
"""

from __future__ import annotations

from typing import Any

from edgesdk._lazy import require

_HINT = "pip install 'edgesdk[torch]'"


def _torch() -> Any:
    return require("torch", feature="the PyTorch training helpers", hint=_HINT)


def update_bn(model: Any, s: float = 1e-4) -> int:
    """Add the Network Slimming L1 sub-gradient ``s * sign(gamma)`` to every BatchNorm weight's grad.

    Call after ``loss.backward()`` and before ``optimizer.step()``.

    Args:
        model: a ``torch.nn.Module``.
        s: the penalty strength (the paper's 1e-4 by default; 1e-5..1e-3 are common).

    Returns:
        The number of BatchNorm layers updated (those with an affine weight and a gradient).

    Raises:
        MissingDependencyError: torch is not installed.
    """
    torch = _torch()
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    count = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, norms) and module.weight is not None and module.weight.grad is not None:
                module.weight.grad.add_(s * torch.sign(module.weight))
                count += 1
    return count


updateBN = update_bn  # noqa: N816  (the name the Network Slimming code uses)


def bn_l1(model: Any) -> Any:
    """Sum of ``|gamma|`` over every BatchNorm (a scalar tensor), to log or to add to a loss."""
    torch = _torch()
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    total = torch.zeros(())
    for module in model.modules():
        if isinstance(module, norms) and module.weight is not None:
            total = total + module.weight.abs().sum()
    return total


_SCALE_CLASS: Any = None


def _scale_class() -> Any:
    """``BranchScale(nn.Module)``: ``y = lambda * x`` with a learnable scalar ``lambda`` (created once)."""
    global _SCALE_CLASS
    if _SCALE_CLASS is None:
        torch = _torch()

        class BranchScale(torch.nn.Module):  # type: ignore[name-defined,misc]
            """SSS scaling factor of one residual branch (initialised to 1)."""

            def __init__(self, init: float = 1.0) -> None:
                super().__init__()
                self.scale = torch.nn.Parameter(torch.tensor(float(init)))

            def forward(self, x: Any) -> Any:
                return x * self.scale

        _SCALE_CLASS = BranchScale
    return _SCALE_CLASS


def branch_scale(init: float = 1.0) -> Any:
    """A new SSS branch scale module (``y = lambda * x``, ``lambda`` learnable, starts at ``init``).

    Raises:
        MissingDependencyError: torch is not installed.
    """
    return _scale_class()(init)


def sss_penalty(model: Any, s: float = 1e-4) -> Any:
    """``s * sum |lambda|`` over every :func:`branch_scale` in ``model`` (add it to the loss).

    Raises:
        MissingDependencyError: torch is not installed.
    """
    torch = _torch()
    cls = _scale_class()
    total = torch.zeros(())
    for module in model.modules():
        if isinstance(module, cls):
            total = total + module.scale.abs()
    return s * total
