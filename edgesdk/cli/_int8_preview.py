"""`edgesdk eval --precision int8`: options, the call, and the side-by-side table."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgesdk.cli._console import err_console, out_console, phase_bars, print_json

if TYPE_CHECKING:
    from edgesdk.quant.preview import Int8Preview
    from edgesdk.recipe import Recipe


class Precision(str, enum.Enum):
    """What ``edgesdk eval`` runs."""

    fp32 = "fp32"
    int8 = "int8"


PrecisionOpt = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="fp32: the exported model; int8: also its int8 Q/DQ simulation(s), side by side with fp32",
    ),
]
CalibrationOpt = Annotated[
    Optional[Path],
    typer.Option("--calibration", help="int8: use the Q/DQ model of an earlier `edgesdk calibrate -o DIR`"),
]
CalibratorsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--calibrator",
        help="int8 without --calibration: calibrators to compare, comma-separated "
        "(entropy,entropy-nozero,minmax,percentile,mse,mixed; default: the recipe's)",
    ),
]
CalibImagesOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--images",
        help="int8 without --calibration: calibration images (default: the --data folder itself, optimistic)",
    ),
]
CalibCountOpt = Annotated[
    Optional[int],
    typer.Option("--count", min=1, help="int8 without --calibration: calibration images to pick"),
]


def check_fp32_options(
    calibration: Optional[Path], calibrators: Optional[str], images: Optional[Path], count: Optional[int]
) -> None:
    """Reject int8-only options with ``--precision fp32``."""
    given = [
        flag
        for flag, value in (
            ("--calibration", calibration),
            ("--calibrator", calibrators),
            ("--images", images),
            ("--count", count),
        )
        if value is not None
    ]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} only apply with --precision int8", param_hint="--precision"
        )


def run_int8(
    recipe: Recipe,
    data: Path,
    *,
    calibration: Optional[Path],
    calibrators: Optional[str],
    images: Optional[Path],
    count: Optional[int],
    model_dir: Optional[Path],
    model: Optional[Path],
    limit: Optional[int],
    min_size: float,
    as_json: bool,
) -> None:
    """Run :func:`edgesdk.quant.preview.int8_preview` with a progress bar and render it."""

    from edgesdk.quant.preview import int8_preview

    names = [c.strip() for c in calibrators.split(",") if c.strip()] if calibrators else None
    with phase_bars(recipe.name) as progress:
        preview = int8_preview(
            recipe,
            data,
            calibration=calibration,
            calibrators=names,
            images=images,
            count=count,
            model_dir=model_dir,
            model=model,
            limit=limit,
            min_size=min_size,
            progress=progress,
        )
    if as_json:
        print_json(preview.to_json())
        return
    render(preview)


def render(preview: Int8Preview) -> None:
    """The fp32 vs int8 table (mAP in %, drops in points) and the calibration notes."""
    from rich.table import Table

    fp32 = preview.fp32
    table = Table(
        title=f"{fp32.model} on {Path(fp32.data).name} ({fp32.images} images): fp32 vs int8 (Q/DQ on onnxruntime)",
        title_justify="left",
    )
    for column in ("precision", "calibrator", "mAP50", "Δ mAP50", "mAP50-95", "Δ mAP50-95"):
        table.add_column(column, justify="left" if column in ("precision", "calibrator") else "right")
    table.add_row("fp32", "-", f"{100 * fp32.map50:.1f}", "", f"{100 * fp32.map50_95:.1f}", "")
    best = preview.best()
    for name, result in preview.int8.items():
        table.add_row(
            "int8",
            name + (" (best)" if name == best and len(preview.int8) > 1 else ""),
            f"{100 * result.map50:.1f}",
            f"{100 * (result.map50 - fp32.map50):+.1f}",
            f"{100 * result.map50_95:.1f}",
            f"{100 * (result.map50_95 - fp32.map50_95):+.1f}",
        )
    out_console.print(table)
    info = preview.calibration
    if "folder" in info:
        out_console.print(f"note: int8 model from {info['folder']} ({info.get('images')} calibration images)")
    else:
        out_console.print(
            f"note: calibrated on {info['images']} images from {info['images_dir']}", soft_wrap=True
        )
        if info.get("same_images_as_eval"):
            out_console.print(
                "note: calibration and evaluation used the same folder (optimistic); pass --images for another",
                soft_wrap=True,
            )
        for line in info.get("warnings", []):
            err_console.print(f"[yellow]warning:[/yellow] {line}", soft_wrap=True)
    for note in fp32.notes:
        out_console.print(f"note: {note}", soft_wrap=True)
