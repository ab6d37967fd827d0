"""Shared CLI parameters, declared once (Annotated style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RecipeArg = Annotated[str, typer.Argument(help="recipe name (see `edgesdk recipes`) or path to a .yaml file")]
ModelOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--model", help="use this model file instead of the recipe's (darknet: X.cfg with X.weights beside)"
    ),
]
ModelDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--model-dir",
        help="folder for the recipe's relative model paths [env EDGESDK_MODEL_DIR; default ./models]",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]
OutOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="where to write the result")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks for errors", is_eager=True)]
DeviceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--device", "-d", help="device name (inventory, ~/.ssh/config Host, or `local`) [default: local]"
    ),
]
GroupOpt = Annotated[Optional[str], typer.Option("--group", "-g", help="every device in this group")]
AcceptNewOpt = Annotated[
    bool, typer.Option("--accept-new", help="record an unknown host key (a changed key is always refused)")
]
CalibrationOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--calibration", help="folder from `edgesdk calibrate -o`: sends its cache, Q/DQ model and images"
    ),
]
