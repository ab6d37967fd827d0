"""`edgesdk eval RECIPE --data DIR`: COCO mAP of a recipe's model on a YOLO-format labelled folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgesdk.cli._console import out_console, phase_bars, print_json
from edgesdk.cli._int8_preview import (
    CalibCountOpt,
    CalibImagesOpt,
    CalibrationOpt,
    CalibratorsOpt,
    Precision,
    PrecisionOpt,
    check_fp32_options,
    run_int8,
)
from edgesdk.cli._params import JsonOpt, ModelDirOpt, ModelOpt, RecipeArg
from edgesdk.eval.runner import EvalResult, evaluate
from edgesdk.recipe import load_recipe

app = typer.Typer()

DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        help="labelled folder: `images/(split/)*.jpg` + `labels/(split/)*.txt`, "
        "lines 'class cx cy w h' normalised",
    ),
]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="evaluate only the first N images")]
MinSizeOpt = Annotated[
    float,
    typer.Option(
        "--min-size",
        min=0.0,
        help="ignore ground-truth boxes with a side below this many pixels (marked iscrowd: not missed, "
        "detections on them not penalised)",
    ),
]


DetectionsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--detections",
        help="score these device detections (`edgesdk run … --conf 0.001 --sink dets.jsonl` on the "
        "--data images) instead of running the model here",
    ),
]


@app.command("eval")
def eval_cmd(
    recipe: RecipeArg,
    data: DataOpt,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    limit: LimitOpt = None,
    min_size: MinSizeOpt = 0.0,
    precision: PrecisionOpt = Precision.fp32,
    calibration: CalibrationOpt = None,
    calibrator: CalibratorsOpt = None,
    images: CalibImagesOpt = None,
    count: CalibCountOpt = None,
    detections: DetectionsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the exported model (onnxruntime) over labelled images; print COCO mAP@0.5 and mAP@0.5:0.95.

    Protocol: score >= 0.001, at most 300 detections per image, the recipe's NMS IoU
    (not the run-time thresholds). Face recipes evaluate single-class; with annotations.json
    beside the images (WIDER subset) they are resized to their natural aspect first.
    With --precision int8 the int8 Q/DQ simulation(s) are scored too, side by side. With
    --detections, what the device found (`edgesdk run` on these images) is scored instead.
    """

    spec = load_recipe(recipe)
    if detections is not None:
        if precision is Precision.int8 or model is not None:
            raise typer.BadParameter(
                "--detections scores what the device found: no --precision int8 or --model"
            )
        from edgesdk.eval.device import evaluate_detections

        result = evaluate_detections(spec, data, detections, limit=limit, min_size=min_size)
        if as_json:
            print_json(result.to_json())
        else:
            _render(result)
        return
    if precision is Precision.int8:
        run_int8(
            spec,
            data,
            calibration=calibration,
            calibrators=calibrator,
            images=images,
            count=count,
            model_dir=model_dir,
            model=model,
            limit=limit,
            min_size=min_size,
            as_json=as_json,
        )
        return
    check_fp32_options(calibration, calibrator, images, count)
    with phase_bars("eval") as progress:
        result = evaluate(
            spec,
            data,
            model_dir=model_dir,
            model=model,
            limit=limit,
            min_size=min_size,
            progress=lambda done, total: progress(spec.name, done, total),
        )
    if as_json:
        print_json(result.to_json())
        return
    _render(result)


def _render(result: EvalResult) -> None:
    from rich.table import Table

    protocol = result.protocol
    caption = (
        f"pycocotools bbox; score >= {protocol['score_threshold']}, "
        f"<= {protocol['max_detections']} dets/image, "
        f"NMS IoU {protocol['iou_threshold']}; {result.num_gt} GT boxes"
    )
    table = Table(title="evaluation", title_justify="left", caption=caption, caption_justify="left")
    for column in ("model", "data", "images", "mAP50", "mAP50-95", "images/s"):
        table.add_column(column, justify="right" if column not in ("model", "data") else "left")
    table.add_row(
        result.model,
        Path(result.data).name,
        str(result.images),
        f"{100 * result.map50:.1f}",
        f"{100 * result.map50_95:.1f}",
        f"{result.images_per_s:.1f}" if result.seconds > 0 else "-",
    )
    out_console.print(table)
    for note in result.notes:
        out_console.print(f"note: {note}", soft_wrap=True)
