"""`edgesdk calibrate RECIPE --images DIR`: int8 calibration cache, Q/DQ model and summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgesdk.cli._console import err_console, next_step, out_console, phase_bars, print_json
from edgesdk.cli._params import JsonOpt, ModelDirOpt, ModelOpt, OutOpt, RecipeArg
from edgesdk.quant.cache import DEFAULT_TRT, TRT_TARGETS
from edgesdk.recipe import load_recipe

if TYPE_CHECKING:
    from edgesdk.quant.calibrate import CalibrationResult

app = typer.Typer()

ImagesOpt = Annotated[
    Path, typer.Option("--images", help="folder to pick calibration images from (searched recursively)")
]
CountOpt = Annotated[
    Optional[int],
    typer.Option("--count", min=1, help="calibration images to pick (default: the recipe's quantize.count)"),
]
CalibratorOpt = Annotated[
    Optional[str],
    typer.Option(
        "--calibrator",
        help="entropy (TensorRT's, Migacz), entropy-nozero (first histogram bin discarded, for ReLU nets), "
        "minmax, percentile, mse or mixed (per tensor, least error through the next layer) "
        "(default: the recipe's quantize.calibrator)",
    ),
]
TrtOpt = Annotated[
    str,
    typer.Option(
        "--trt",
        help="the device's TensorRT, for the cache header: "
        + ", ".join(f"{k} ({v})" for k, v in TRT_TARGETS.items())
        + " or a full version such as 8.6.1",
    ),
]

SensitivityOpt = Annotated[
    int,
    typer.Option(
        "--sensitivity",
        min=0,
        help="rank the quantised activations by the output error each causes alone and suggest "
        "quantize.keep_fp for the top N (slower: one onnxruntime session per tensor)",
    ),
]

SinglePassOpt = Annotated[
    bool,
    typer.Option(
        "--single-pass",
        help="one onnxruntime pass instead of two: histograms grow and are re-binned at the end "
        "(faster; values may land up to 1/16 of an entropy bin off the exact [0, max] histogram)",
    ),
]
AllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="print every tensor's row (default: the flagged ones; summary.json always holds them all)",
    ),
]

SHOWN_UNFLAGGED = 5
"""Rows shown when no tensor is flagged: the most saturated ones."""
HEAVY_SATURATION = 0.5
"""Saturation share above which a threshold clips most values: the images do not cover the tensor."""

_PHASES = {
    "select": "selecting images",
    "statistics": "activation statistics",
    "sensitivity": "sensitivity (one tensor at a time)",
}


def default_output(recipe_name: str) -> Path:
    """Where ``edgesdk calibrate`` writes when no ``-o`` is given."""
    return Path("out") / f"{recipe_name}-int8"


@app.command("calibrate")
def calibrate_cmd(
    recipe: RecipeArg,
    images: ImagesOpt,
    count: CountOpt = None,
    calibrator: CalibratorOpt = None,
    trt: TrtOpt = DEFAULT_TRT,
    model: ModelOpt = None,
    model_dir: ModelDirOpt = None,
    output: OutOpt = None,
    sensitivity: SensitivityOpt = 0,
    single_pass: SinglePassOpt = False,
    all_tensors: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pick calibration images, measure activations, write calibration.cache, model.qdq.onnx, summary.json.

    Thresholds use TensorRT's entropy calibration by default (2048-bin |x| histograms,
    least KL divergence); the cache header names the device's TensorRT version (--trt).
    """
    from edgesdk.quant.calibrate import calibrate

    spec = load_recipe(recipe)
    target = output or default_output(spec.name)
    with phase_bars(spec.name, _PHASES) as progress:
        result = calibrate(
            spec,
            images,
            count=count,
            calibrator=calibrator,
            trt=trt,
            model_dir=model_dir,
            model=model,
            output=target,
            sensitivity=sensitivity,
            passes=1 if single_pass else 2,
            progress=progress,
        )
    if as_json:
        print_json(result.summary_json())
        return
    _render(result, all_tensors)
    next_step(f"edgesdk eval {spec.name} --data DIR --precision int8 --calibration {target}")


def _shown(result: CalibrationResult, everything: bool) -> list[int]:
    """Indices of the rows to print: all, or the flagged ones (else the most saturated few)."""
    cached = set(result.cache_tensors)
    if everything:
        return list(range(len(result.tensors)))
    flagged = [i for i, t in enumerate(result.tensors) if t.broken or (t.flags and t.name in cached)]
    if flagged:
        return flagged
    ranked = sorted(range(len(result.tensors)), key=lambda i: -result.tensors[i].saturation)
    return sorted(ranked[:SHOWN_UNFLAGGED])


def _render(result: CalibrationResult, everything: bool = False) -> None:
    from rich.table import Table

    selection = result.prepared.selection
    for line in selection.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {line}", soft_wrap=True)
    dropped = ", ".join(f"{n} {k}" for k, n in selection.drop_counts().items()) or "none"
    err_console.print(
        f"images: {len(selection.chosen)} chosen of {selection.usable} usable in {selection.root} "
        f"({selection.other_files} non-image files ignored; dropped: {dropped}; "
        f"{len(selection.grayscale)} grey, {len(selection.reduced)} huge)",
        soft_wrap=True,
    )
    table = Table(
        title=f"{result.prepared.recipe.name}: {result.calibrator} thresholds", title_justify="left"
    )
    for column in ("tensor", "threshold", "max |x|", "saturated %", "KL", "cache", "flags"):
        left = column in ("tensor", "cache", "flags")
        # fold, never "…": a tensor name is what a recipe's keep-float list needs
        table.add_column(
            column, justify="left" if left else "right", overflow="fold" if column == "tensor" else "ellipsis"
        )
    cached = set(result.cache_tensors)
    shown = _shown(result, everything)
    for t in (result.tensors[i] for i in shown):
        # Tensors left out of the cache (kept in float: keep_fp, the decoder tail) are never
        # quantised on the device, so their flags are for information only.
        used = t.name in cached
        table.add_row(
            t.name,
            "-" if t.threshold is None else f"{t.threshold:.5g}",
            f"{t.amax:.5g}",
            f"{100 * t.saturation:.3f}",
            "-" if t.kl is None else f"{t.kl:.4f}",
            "yes" if used else "float",
            ", ".join(t.flags),
            style="red" if t.broken else ("yellow" if t.flags and used else (None if used else "dim")),
        )
    out_console.print(table)
    if len(shown) < len(result.tensors):
        what = (
            "the flagged ones"
            if any(result.tensors[i].flags for i in shown)
            else "none flagged; the most saturated"
        )
        err_console.print(
            f"{len(shown)} of {len(result.tensors)} tensors shown ({what}); --all prints every one, "
            f"summary.json holds them all",
            soft_wrap=True,
        )
    clipped = [t.name for t in result.tensors if t.name in cached and t.saturation > HEAVY_SATURATION]
    if clipped:
        err_console.print(
            f"[yellow]{len(clipped)} tensor(s) clip most of their values[/yellow] ({', '.join(clipped[:3])}"
            f"{' ...' if len(clipped) > 3 else ''}): their threshold sits below most values, so the "
            "images do not cover what the model sees; calibrate on more, representative images",
            soft_wrap=True,
        )
    broken = [t.name for t in result.tensors if t.broken]
    if broken:
        err_console.print(
            f"[red]{len(broken)} tensor(s) with a broken range[/red] (left out of the cache and the Q/DQ model): "
            + ", ".join(broken[:5])
            + (" ..." if len(broken) > 5 else ""),
            soft_wrap=True,
        )
    spiked = [t.name for t in result.tensors if "zero-spike" in t.flags]
    if spiked:
        err_console.print(
            f"[yellow]{len(spiked)} tensor(s) flagged zero-spike[/yellow]: entropy is pinned by the zeros ReLU "
            f"leaves; compare calibrators: edgesdk eval {result.prepared.recipe.name} --data DIR --precision int8 "
            "--calibrator entropy,entropy-nozero,percentile,mse",
            soft_wrap=True,
        )
    err_console.print(
        f"[green]calibrated[/green] {len(result.tensors)} tensors on {result.prepared.stats.images} images; "
        f"cache TRT-{result.trt_version} with {len(result.cache_tensors)} tensors; "
        f"Q/DQ on {len(result.plan.activations)} activations and {len(result.plan.weights)} weights",
        soft_wrap=True,
    )
    for kind, path in result.files.items():
        err_console.print(f"  {kind:8} {path}")
    if result.sensitivity:
        _render_sensitivity(result)


def _render_sensitivity(result: CalibrationResult) -> None:
    from rich.table import Table

    table = Table(title="most sensitive activations (quantised alone)", title_justify="left")
    for column in ("tensor", "consumers (keep_fp names)", "output error %"):
        table.add_column(column, justify="right" if column.startswith("output") else "left", overflow="fold")
    for entry in result.sensitivity[: max(result.suggest, 10)]:
        table.add_row(entry.tensor, ", ".join(entry.consumers), f"{100 * entry.error:.2f}")
    out_console.print(table)
    names = ", ".join(f'"{n}"' for n in result.suggested_keep_fp)
    out_console.print(f"suggested recipe lines (top {result.suggest}):\nquantize:\n  keep_fp: [{names}]")
