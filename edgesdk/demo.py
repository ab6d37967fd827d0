"""``edgesdk demo``: the whole flow on the built-in `local` device, on the real models.

export (parity on real images) → bundle → push → engine build → activate, an evaluation on
labelled images, detection on the sample images (annotated copies written), and a benchmark
on a real video (an HTML report). Models come from ``--model-dir`` / ``EDGESDK_MODEL_DIR`` /
``./models``, or the shared test tree (``EDGESDK_TEST_DATA``, default ``../shared``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesdk import settings
from edgesdk.deploy.camera import bench_on_device, run_on_device
from edgesdk.deploy.flow import DeviceReport, deploy
from edgesdk.deploy.inventory import Device, resolve_device
from edgesdk.errors import ArtifactNotFound, DeviceError
from edgesdk.eval.runner import EvalResult, evaluate
from edgesdk.export import list_images
from edgesdk.recipe import Recipe, load_recipe
from edgesdk.report import check_report, render_html

DEFAULT_RECIPE = "yolox-nano"
COCO_DATA = "coco_val2017_first128"
FACE_DATA = "widerface_val200_416"
VIDEO = "one-by-one-person-detection.mp4"


@dataclass
class DemoResult:
    """What the demo did, step by step."""

    recipe: str
    device: str
    model_dir: Path
    deploy: DeviceReport | None = None
    evaluation: EvalResult | None = None
    annotated: Path | None = None
    bench: dict[str, Any] | None = None
    report_html: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "device": self.device,
            "model_dir": str(self.model_dir),
            "deploy": self.deploy.to_json() if self.deploy else None,
            "eval": self.evaluation.to_json() if self.evaluation else None,
            "annotated": str(self.annotated) if self.annotated else None,
            "bench": {k: self.bench.get(k) for k in ("infer_fps", "e2e_fps", "e2e_over_infer", "frames")}
            if self.bench
            else None,
            "report_html": str(self.report_html) if self.report_html else None,
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
    bench_frames: int = 60,
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
    _camera(result, recipe, target, models, data, bench_frames, tell)
    return result


def _camera(result: DemoResult, recipe: Recipe, target: Device, models: Path, data: Path, frames: int,
            tell: Callable[[str], None]) -> None:  # fmt: skip
    """Run the deployed engine on the sample images and benchmark it on a video (local device only)."""
    if not target.is_local:
        return  # a remote device's files live there; `edgesdk run/bench` are the commands for it
    out = (settings.work_dir() / "demo").resolve()
    samples = data / "sample_images"
    if samples.is_dir():
        tell("detecting on the sample images")
        run_on_device(
            target, recipe.name, settings.work_dir(), source=str(samples), sinks=[f"dir://{out}/annotated/"]
        )
        result.annotated = out / "annotated"
    video = data / "videos" / ("head-pose-face-detection-female.gif" if recipe.task == "face" else VIDEO)
    if video.is_file():
        tell(f"benchmarking on {video.name}")
        [report] = bench_on_device(target, recipe, settings.work_dir(), precisions=[recipe.build.precision],
                                   source=str(video), frames=frames, warmup=3, model_dir=models)  # fmt: skip
        result.bench = report
        result.report_html = out / "report.html"
        result.report_html.write_text(
            render_html([check_report(report, "demo")], title=f"edgesdk demo: {recipe.name}")
        )
