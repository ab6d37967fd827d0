"""PyTorch training helpers: a clear error without torch; the real maths with torch."""

from __future__ import annotations

import importlib.util

import pytest

from edgesdk import torch_helpers
from edgesdk.errors import MissingDependencyError

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(HAS_TORCH, reason="torch is installed here")
@pytest.mark.parametrize("call", [lambda: torch_helpers.update_bn(object()), torch_helpers.branch_scale,
                                  lambda: torch_helpers.sss_penalty(object())])  # fmt: skip
def test_without_torch_names_the_extra(call) -> None:
    with pytest.raises(MissingDependencyError, match="'torch'") as err:
        call()
    assert err.value.hint == "pip install 'edgesdk[torch]'"


def test_update_bn_adds_the_l1_subgradient() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -0.2, 0.0, 1.0]))
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    before = model[1].weight.grad.clone()
    assert torch_helpers.updateBN(model, s=0.1) == 1
    assert torch.allclose(model[1].weight.grad - before, torch.tensor([0.1, -0.1, 0.0, 0.1]))
    assert float(torch_helpers.bn_l1(model)) == pytest.approx(1.7)


def test_sss_penalty_over_branch_scales() -> None:
    torch = pytest.importorskip("torch")
    scales = torch.nn.ModuleList([torch_helpers.branch_scale(0.5), torch_helpers.branch_scale(-2.0)])
    penalty = torch_helpers.sss_penalty(scales, s=0.1)
    assert float(penalty) == pytest.approx(0.25)
    penalty.backward()
    assert float(scales[1].scale.grad) == pytest.approx(-0.1)
    assert torch.allclose(scales[0](torch.ones(2)), torch.full((2,), 0.5))
