"""PyTorch -> ONNX: the clear error without torch, and (when torch is installed) a real export."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgesdk.errors import ArtifactNotFound, MissingDependencyError, ModelFormatError, RecipeError
from edgesdk.importers.torch_module import load_factory, torch_to_onnx

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(HAS_TORCH, reason="torch is installed here")
def test_without_torch_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as err:
        torch_to_onnx("somewhere:factory", None, (1, 3, 32, 32), 13)
    assert "edgesdk[torch]" in str(err.value)
    assert err.value.hint == "pip install 'edgesdk[torch]'"


def test_load_factory_resolves_dotted_attributes() -> None:
    assert load_factory("os.path:join")("a", "b") == "a/b"
    assert load_factory("pathlib:Path.cwd")() == Path.cwd()


@pytest.mark.parametrize(
    ("factory", "words"),
    [
        ("no_colon_here", "must look like"),
        ("edgesdk_no_such_module:make", "cannot import 'edgesdk_no_such_module'"),
        ("os.path:no_such_function", "has no attribute"),
        ("os:sep", "not callable"),
    ],
)
def test_load_factory_errors(factory: str, words: str) -> None:
    with pytest.raises(RecipeError, match=words):
        load_factory(factory)


MODELS = """
import torch
from torch import nn


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.head(y), y.mean(dim=(2, 3))


def two():
    return Two()


def single():
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Sigmoid())


def not_a_module():
    return 42
"""


@pytest.fixture()
def torch_factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    torch = pytest.importorskip("torch")
    (tmp_path / "edgesdk_test_models.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return torch


def test_export_with_weights_matches_torch(torch_factories, tmp_path: Path) -> None:
    import onnxruntime as ort

    torch = torch_factories
    from edgesdk_test_models import two

    torch.manual_seed(0)
    reference = two()
    reference.bn.running_mean.uniform_(-0.5, 0.5)
    reference.bn.running_var.uniform_(0.5, 2.0)
    weights = tmp_path / "two.pt"
    torch.save(reference.state_dict(), weights)
    model = torch_to_onnx("edgesdk_test_models:two", weights, (2, 3, 16, 16), 13)
    assert [o.name for o in model.graph.output] == ["output_0", "output_1"]
    assert model.graph.input[0].name == "images"
    assert {p.key: p.value for p in model.metadata_props}["source"] == "torch"
    x = np.random.default_rng(0).uniform(size=(2, 3, 16, 16)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = sess.run(None, {"images": x})
    with torch.no_grad():
        theirs = [t.numpy() for t in reference.eval()(torch.from_numpy(x))]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_export_single_output(torch_factories) -> None:
    model = torch_to_onnx("edgesdk_test_models:single", None, (1, 3, 9, 9), 17)
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.opset_import[0].version == 17


def test_checkpoint_wrapper_is_unwrapped(torch_factories, tmp_path: Path) -> None:
    torch = torch_factories
    from edgesdk_test_models import single

    weights = tmp_path / "ckpt.pt"
    torch.save({"state_dict": single().state_dict(), "epoch": 3}, weights)
    assert torch_to_onnx("edgesdk_test_models:single", weights, (1, 3, 9, 9), 13).graph.node


def test_weights_of_another_model(torch_factories, tmp_path: Path) -> None:
    torch = torch_factories
    from edgesdk_test_models import single

    weights = tmp_path / "other.pt"
    torch.save(single().state_dict(), weights)
    with pytest.raises(ModelFormatError, match="does not fit"):
        torch_to_onnx("edgesdk_test_models:two", weights, (1, 3, 9, 9), 13)


def test_bad_weights_files(torch_factories, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="nope.pt"):
        torch_to_onnx("edgesdk_test_models:single", tmp_path / "nope.pt", (1, 3, 9, 9), 13)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ModelFormatError, match="garbage.pt"):
        torch_to_onnx("edgesdk_test_models:single", garbage, (1, 3, 9, 9), 13)


def test_factory_must_return_a_module(torch_factories) -> None:
    with pytest.raises(RecipeError, match="not an nn.Module"):
        torch_to_onnx("edgesdk_test_models:not_a_module", None, (1, 3, 9, 9), 13)
