"""``edgesdk demo``: the whole flow on the built-in `local` device, on the real models.

export (parity on real images) → bundle → push → engine build → activate, then an
evaluation on labelled images. Models come from ``--model-dir`` / ``EDGESDK_MODEL_DIR`` /
``./models``, or the shared test tree (``EDGESDK_TEST_DATA``, default ``../shared``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesdk import settings
from edgesdk.deploy.flow import DeviceReport, deploy
from edgesdk.deploy.inventory import Device, resolve_device
from edgesdk.errors import ArtifactNotFound, DeviceError
from edgesdk.eval.runner import EvalResult, evaluate
from edgesdk.export import list_images
from edgesdk.recipe import load_recipe

DEFAULT_RECIPE = "yolox-nano"
COCO_DATA = "coco_val2017_first128"
FACE_DATA = "widerface_val200_416"


@dataclass
class DemoResult:
    """What the demo did, step by step."""

    recipe: str
    device: str
    model_dir: Path
    deploy: DeviceReport | None = None
    evaluation: EvalResult | None = None
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "device": self.device,
            "model_dir": str(self.model_dir),
            "deploy": self.deploy.to_json() if self.deploy else None,
            "eval": self.evaluation.to_json() if self.evaluation else None,
        }


def find_model_dir(explicit: Path | None = None) -> Path:
    """``explicit``, else ``EDGESDK_MODEL_DIR``/``./models`` if it exists, else the shared tree's models.

    Raises:
        ArtifactNotFound: none of them exists; says where to put the models.
    """
    candidates = [explicit] if explicit else [settings.model_dir(), settings.test_data() / "models"]
    for folder in candidates:
        if folder is not None and folder.is_dir():
            return folder
    tried = ", ".join(str(c) for c in candidates if c is not None)
    raise ArtifactNotFound(
        f"no model folder found (tried {tried})",
        hint="put the models in ./models, or set EDGESDK_MODEL_DIR / EDGESDK_TEST_DATA",
    )


def run_demo(
    recipe_name: str = DEFAULT_RECIPE,
    *,
    device: Device | None = None,
    model_dir: Path | None = None,
    eval_images: int = 16,
    say: Callable[[str], None] | None = None,
) -> DemoResult:
    """Deploy ``recipe_name`` to ``device`` (default `local`) and evaluate it.

    Raises:
        DeviceError: the deploy failed (the message is the device's).
    """
    tell = say or (lambda _m: None)
    recipe = load_recipe(recipe_name)
    target = device or resolve_device("local")
    models = find_model_dir(model_dir)
    data = settings.test_data() / "data"
    result = DemoResult(recipe.name, target.name, models)
    samples = data / "sample_images"
    parity = list_images(samples) if samples.is_dir() else None
    tell(f"deploying {recipe.name} to {target.name} (models from {models})")
    [report] = deploy(recipe, [target], settings.work_dir(), model_dir=models, parity_images=parity)
    result.deploy = report
    if not report.ok:
        raise DeviceError(f"deploy to {target.name} failed: {report.error}", hint=report.hint)
    dataset = data / (FACE_DATA if recipe.task == "face" else COCO_DATA)
    if dataset.is_dir():
        tell(f"evaluating on {eval_images} images of {dataset.name}")
        result.evaluation = evaluate(recipe, dataset, model_dir=models, limit=eval_images)
    else:
        tell(f"no labelled images at {dataset}: skipping the evaluation")
    return result
