"""`edgesdk inspect MODEL`: I/O, ops, params, FLOPs and a TensorRT lint; `edgesdk fixes`: the fix list."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgesdk.cli._console import err_console, out_console, print_json
from edgesdk.cli._params import JsonOpt, ModelDirOpt, ModelOpt

if TYPE_CHECKING:
    from edgesdk.graph.inspect import ModelSummary

app = typer.Typer()


class TrtVersion(str, Enum):
    """TensorRT versions with a support table (edgesdk.graph.trt_support)."""

    v85 = "8.5"
    v86 = "8.6"
    v103 = "10.3"


ModelArg = Annotated[
    str, typer.Argument(help="an .onnx file, or a recipe name/.yaml (inspects its source model)")
]
TrtOpt = Annotated[
    Optional[TrtVersion],
    typer.Option("--trt", help="lint against this TensorRT version's ONNX parser (no TensorRT needed)"),
]

StrictOpt = Annotated[bool, typer.Option("--strict", help="exit 1 when the lint finds errors")]


@app.command("inspect")
def inspect_cmd(
    model: ModelArg,
    trt: TrtOpt = None,
    model_dir: ModelDirOpt = None,
    model_file: ModelOpt = None,
    as_json: JsonOpt = False,
    strict: StrictOpt = False,
) -> None:
    """Show a model's inputs/outputs, op histogram, parameters, FLOPs and TensorRT lint."""
    from edgesdk.graph.inspect import inspect_source

    summary = inspect_source(model, trt=trt.value if trt else None, model_dir=model_dir, model=model_file)
    if as_json:
        print_json(summary.to_json())
    else:
        _render(summary)
    if summary.errors:
        err_console.print(
            f"[red]{summary.errors} lint error(s)[/red]: TensorRT {summary.trt} will refuse this model"
        )
        if strict:
            raise typer.Exit(1)


def _shape(dims: list[int | str | None] | None) -> str:
    return "?" if dims is None else "x".join("?" if d is None else str(d) for d in dims)


def _render(s: ModelSummary) -> None:
    from rich.table import Table

    out_console.print(
        f"[bold]{s.source}[/bold]  opset {s.opset}, IR {s.ir_version}, {s.producer or 'unknown producer'}"
    )
    io = Table(title="inputs / outputs", title_justify="left")
    for col in ("", "name", "shape", "dtype"):
        io.add_column(col)
    for kind, items in (("in", s.inputs), ("out", s.outputs)):
        for t in items:
            io.add_row(kind, t.name, _shape(t.shape), t.dtype)
    out_console.print(io)
    out_console.print(
        f"params {s.params:,} ({s.initializers} initializers)   nodes {s.nodes}   "
        f"GFLOPs {s.flops / 1e9:.3f} (conv/gemm/matmul, 2xMACs) + {s.other_flops / 1e9:.3f} other"
        + (
            f"   [yellow]{len(s.uncounted)} node(s) without shapes not counted[/yellow]"
            if s.uncounted
            else ""
        )
    )
    out_console.print("ops  " + ", ".join(f"{op} {n}" for op, n in s.ops.items()), soft_wrap=True)
    if s.trt is None:
        return
    if not s.lint:
        out_console.print(f"[green]TensorRT {s.trt}: no findings[/green]")
        return
    errors = s.errors
    out_console.print(
        f"[bold]TensorRT {s.trt} lint[/bold]: {errors} error(s), {len(s.lint) - errors} warning(s)"
    )
    for f in s.lint:
        color = "red" if f.severity == "error" else "yellow"
        where = f"{f.node} ({f.op})" if f.node else (f.op or "model")
        out_console.print(f"  [{color}]{f.severity}[/{color}] {f.rule}  [bold]{where}[/bold]", soft_wrap=True)
        out_console.print(f"      {f.message}", soft_wrap=True, highlight=False, markup=False)
        out_console.print(f"      fix: {f.fix}", soft_wrap=True, highlight=False, markup=False)


@app.command("fixes")
def fixes_cmd(as_json: JsonOpt = False) -> None:
    """List the graph fixes a recipe's `fixes` can name."""
    from edgesdk.graph.registry import fix_doc, fix_names

    rows = [{"name": name, "doc": fix_doc(name)} for name in fix_names()]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="graph fixes", title_justify="left")
    table.add_column("name")
    table.add_column("what it does", overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["doc"].replace("``", "`"))
    out_console.print(table)
