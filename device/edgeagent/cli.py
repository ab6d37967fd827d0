"""``python3 edgeagent.pyz <command> [--json]`` — the agent's command line.

Prints one JSON event per line with ``--json`` (see :mod:`edgeagent.events`), short human
lines otherwise. Exit codes: 0 ok, 1 failed, 2 bad input, 3 missing dependency, 4 build failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from edgeagent import __version__
from edgeagent.events import AgentError, BadInput, Emitter, MissingDependency

if TYPE_CHECKING:
    from edgeagent.store import Store

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


def _store(args: argparse.Namespace) -> Store:
    from edgeagent.build import agent_home
    from edgeagent.store import Store

    store = Store(agent_home(args.home))
    store.ensure()
    return store


@command("missing")
def _missing(args: argparse.Namespace, out: Emitter) -> None:
    store = _store(args)
    out.result("missing", {"missing": store.missing(args.sha256), "lock": store.lock_owner()})


@command("commit")
def _commit(args: argparse.Namespace, out: Emitter) -> None:
    store = _store(args)
    done = []
    for pair in args.uploads:
        name, sep, digest = pair.rpartition(":")
        if not sep:
            raise BadInput(f"commit takes NAME:SHA256 pairs, got {pair!r}")
        done.append(store.commit(name, digest))
    out.result("commit", {"committed": done})


@command("install")
def _install(args: argparse.Namespace, out: Emitter) -> None:
    out.result("install", {"bundle": _store(args).install_bundle(args.bundle_id, args.bundle_id)})


@command("activate")
def _activate(args: argparse.Namespace, out: Emitter) -> None:
    out.result("activate", _store(args).activate(args.recipe, args.bundle_id, args.history))


@command("rollback")
def _rollback(args: argparse.Namespace, out: Emitter) -> None:
    from edgeagent.build import build, choose_backend
    from edgeagent.manifest import load_manifest

    store = _store(args)
    state = store.deployment(args.recipe)
    if not state["current"]:
        from edgeagent.runner import not_deployed

        raise not_deployed(store, args.recipe)
    if not state["history"]:
        raise BadInput(
            f"{args.recipe} has no earlier deployment on this device to roll back to",
            "rollback goes to the deployment before the current one; `edgesdk status --device …` "
            "lists them (a deploy that failed never replaced the current one)",
        )
    previous = state["history"][0]
    manifest = load_manifest(store.path("bundles", previous))
    engine = build(manifest, store.home, backend=choose_backend(args.backend), precision=None, out=out)
    record = store.rollback(args.recipe)
    out.result("rollback", {"deployment": record, "engine": engine})


@command("status")
def _status(args: argparse.Namespace, out: Emitter) -> None:
    import os

    from edgeagent.engines import EngineCache

    store = _store(args)
    names = sorted(n[:-5] for n in os.listdir(store.path("deployments")) if n.endswith(".json"))
    cache = EngineCache(store.path("engines"))
    recipes = {}
    for name in names:
        active = cache.active(name)
        entry: Dict[str, object] = dict(store.deployment(name, with_time=True), engine=None)
        if active is not None:
            fingerprint = active.sidecar.get("fingerprint", {})
            provenance = active.sidecar.get("provenance", {})
            entry.update(
                engine=active.key,
                backend=fingerprint.get("backend"),
                backend_version=fingerprint.get("backend_version"),
                precision=fingerprint.get("precision"),
                # recorded since the engine cache has it; older engines: None (unknown)
                effective_precision=provenance.get("effective_precision"),
                engine_bytes=active.sidecar.get("size"),
                built=provenance.get("created"),
            )
        recipes[name] = entry
    out.result("status", {"home": store.home, "recipes": recipes})


@command("lock")
def _lock(args: argparse.Namespace, out: Emitter) -> None:
    store = _store(args)
    info = store.lock(args.owner, force=args.force or args.owner_of_stale == store.lock_owner())
    info["cleaned_uploads"] = store.clean_incoming()
    out.result("lock", info)


@command("unlock")
def _unlock(args: argparse.Namespace, out: Emitter) -> None:
    out.result("unlock", {"released": _store(args).unlock(args.owner)})


@command("run")
def _run(args: argparse.Namespace, out: Emitter) -> None:
    from edgeagent.build import agent_home
    from edgeagent.runner import run

    thresholds = {
        k: v for k, v in (("conf_threshold", args.conf), ("max_detections", args.max_det)) if v is not None
    }
    data = run(agent_home(args.home), args.recipe, args.source, args.sink or [], frames=args.frames,
               duration=args.duration, out=out, source_options=_source_options(args),
               thresholds=thresholds)  # fmt: skip
    out.result("run", data)


@command("bench")
def _bench(args: argparse.Namespace, out: Emitter) -> None:
    from edgeagent.build import agent_home
    from edgeagent.runner import bench

    data = bench(agent_home(args.home), args.recipe, args.source, frames=args.frames, duration=args.duration,
                 warmup=args.warmup, out=out, source_options=_source_options(args))  # fmt: skip
    out.result("bench", data)


SOURCE_OPTIONS = ("width", "height", "fps", "flip", "codec", "loop")


def _source_options(args: argparse.Namespace) -> Dict[str, object]:
    """Camera options given on the command line (csi/v4l2/rtsp), passed to ``open_source``."""
    return {key: getattr(args, key) for key in SOURCE_OPTIONS if getattr(args, key, None) is not None}


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
    _store_parsers(sub)
    _camera_parsers(sub)
    return parser


def _camera_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, help_text in (("run", "camera inference with the deployed engine"),
                            ("bench", "benchmark the deployed engine and the pipeline")):  # fmt: skip
        p = sub.add_parser(name, help=help_text)
        p.add_argument("recipe")
        p.add_argument("--source", required=True, help="csi://0, /dev/video0, rtsp://…, file, image, folder")
        p.add_argument("--frames", type=int, help="stop after this many frames")
        p.add_argument("--duration", type=float, help="stop after this many seconds")
        p.add_argument("--home", help="agent folder (default $EDGEAGENT_HOME or ~/.edgeagent)")
        p.add_argument("--json", action="store_true", help="one JSON event per line")
        p.add_argument("--width", type=int, help="camera capture width (csi, v4l2)")
        p.add_argument("--height", type=int, help="camera capture height (csi, v4l2)")
        p.add_argument("--fps", type=float, help="camera frame rate (csi, v4l2)")
        p.add_argument(
            "--flip",
            help="csi flip: none, counterclockwise, rotate-180, clockwise, horizontal, vertical, 0-7",
        )
        p.add_argument("--codec", help="v4l2: raw or mjpeg; rtsp: h264 or h265")
        p.add_argument("--loop", type=int, help="files and images: extra passes (-1: forever)")
        if name == "run":
            p.add_argument(
                "--sink", action="append", help="display://, out.mp4, mjpeg://:8080, x.jsonl, dir://out/"
            )
            p.add_argument("--conf", type=float, help="score threshold instead of the recipe's")
            p.add_argument(
                "--max-det", type=int, help="detections per frame at most, instead of the recipe's"
            )
        else:
            p.add_argument("--warmup", type=int, default=10, help="engine runs before timing")


def _store_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--home", help="agent folder (default $EDGEAGENT_HOME or ~/.edgeagent)")
        p.add_argument("--json", action="store_true", help="one JSON event per line")
        return p

    add("missing", "which files the store lacks").add_argument("sha256", nargs="*")
    add("commit", "verify uploads and move them into the store").add_argument("uploads", nargs="+")
    add("install", "create a bundle from stored files").add_argument("bundle_id")
    activate = add("activate", "make a bundle the recipe's current deployment")
    activate.add_argument("recipe")
    activate.add_argument("bundle_id")
    activate.add_argument(
        "--history",
        nargs="*",
        help="set the earlier deployments (newest first) instead of pushing the current one",
    )
    rollback = add("rollback", "re-activate the previous deployment")
    rollback.add_argument("recipe")
    rollback.add_argument("--backend", default="auto", choices=("auto", "trt", "ort"))
    add("status", "deployments and active engines")
    lock = add("lock", "take the deploy lock")
    lock.add_argument("--owner", required=True)
    lock.add_argument("--force", action="store_true", help="break a lock left by a deploy that died")
    lock.add_argument(
        "--break-stale", dest="owner_of_stale", help="break the lock if this owner (known dead) holds it"
    )
    add("unlock", "release the deploy lock").add_argument("--owner")


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
    except ImportError as err:
        missing = missing_dependency(err)
        if missing is None:
            raise_internal(out, args.command, err)
            return 1
        out.error(missing)
        return missing.exit_code
    except Exception as err:  # a bug: report it as an event too, with the traceback on stderr
        raise_internal(out, args.command, err)
        return 1
    return 0


def raise_internal(out: Emitter, command: str, err: BaseException) -> None:
    """Report a bug: the traceback on stderr, and an error event."""
    import traceback

    traceback.print_exc(file=sys.stderr)
    out.error(AgentError(f"internal error in edgeagent {command}: {err!r}",
                         "please report it with the traceback above"))  # fmt: skip


# What each third-party module the agent imports is, and where it comes from on a Jetson.
_PACKAGES = {
    "numpy": ("numpy", "sudo apt install python3-numpy (JetPack) or python3 -m pip install numpy"),
    "cv2": (
        "OpenCV",
        "JetPack's python3-opencv (has GStreamer) or python3 -m pip install opencv-python-headless",
    ),
    "onnxruntime": ("onnxruntime", "python3 -m pip install onnxruntime (or onnxruntime-gpu from Jetson Zoo)"),
    "tensorrt": ("TensorRT", "it ships with JetPack: use JetPack's /usr/bin/python3"),
    "pycuda": ("pycuda", "python3 -m pip install pycuda (needs the CUDA toolkit from JetPack)"),
}


def missing_dependency(err: ImportError) -> Optional[MissingDependency]:
    """A :class:`MissingDependency` naming the package and how to install it, when ``err`` is
    about one of the agent's third-party imports; None for anything else (a bug)."""
    top = (getattr(err, "name", None) or "").split(".")[0]
    if top not in _PACKAGES:
        return None
    what, how = _PACKAGES[top]
    return MissingDependency(
        f"{what} is not installed for this device's Python ({sys.executable})",
        f"install it ({how}), or use another Python on the device: "
        "`edgesdk devices add NAME --host … --python /path/to/python3 --replace`",
    )


if __name__ == "__main__":
    sys.exit(main())
