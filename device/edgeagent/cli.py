"""``python3 edgeagent.pyz <command> [--json]`` — the agent's command line.

Prints one JSON event per line with ``--json`` (see :mod:`edgeagent.events`), short human
lines otherwise. Exit codes: 0 ok, 1 failed, 2 bad input, 3 missing dependency, 4 build failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Optional

from edgeagent import __version__
from edgeagent.events import AgentError, Emitter

Command = Callable[[argparse.Namespace, Emitter], None]
_COMMANDS: Dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    """Register an agent command; a duplicate name is a bug."""

    def wrap(fn: Command) -> Command:
        if name in _COMMANDS:
            raise RuntimeError(f"agent command {name!r} registered twice")
        _COMMANDS[name] = fn
        return fn

    return wrap


@command("info")
def _info(args: argparse.Namespace, out: Emitter) -> None:
    from edgeagent.info import machine_info

    out.result("info", machine_info())


@command("build")
def _build(args: argparse.Namespace, out: Emitter) -> None:
    from edgeagent.build import agent_home, build, choose_backend
    from edgeagent.manifest import load_manifest

    manifest = load_manifest(args.bundle)
    backend = choose_backend(args.backend)
    out.result(
        "build", build(manifest, agent_home(args.home), backend=backend, precision=args.precision, out=out)
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeagent", description="edgesdk device agent")
    parser.add_argument("--version", action="version", version="edgeagent " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser("info", help="versions, backends, Jetson facts")
    info.add_argument("--json", action="store_true", help="one JSON event per line")
    build = sub.add_parser("build", help="build (or reuse) the engine for a deployed bundle")
    build.add_argument("bundle", help="bundle folder (holds manifest.json)")
    build.add_argument("--home", help="agent folder (default $EDGEAGENT_HOME or ~/.edgeagent)")
    build.add_argument("--backend", default="auto", choices=("auto", "trt", "ort"))
    build.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="override the recipe's")
    build.add_argument("--json", action="store_true", help="one JSON event per line")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one agent command; returns the exit code."""
    args = _parser().parse_args(argv)
    out = Emitter(as_json=bool(getattr(args, "json", False)))
    try:
        _COMMANDS[args.command](args, out)
    except AgentError as err:
        out.error(err)
        return err.exit_code
    except KeyboardInterrupt:
        out.error(AgentError("interrupted"))
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
