"""Benchmark (not a test): first deploy vs scp of the same files, and re-deploy, over a loopback sshd.

Run from the repo root (needs /usr/sbin/sshd and the shared models/data)::

    python -m tests.benchmarks.bench_deploy [--images 64] [--repeats 3]

The bundle holds yolov5n's exported model plus ``--images`` COCO images as calibration
images (the files an int8 deploy sends). It reports, as medians of ``--repeats`` runs on
fresh device homes:

* first deploy: bytes and files sent, push seconds (transfers only) and MB/s, whole deploy seconds;
* scp of the same files (one ``scp`` call, one connection, as a user would copy them): MB/s;
* the ratio deploy push MB/s / scp MB/s (goal ≥ 0.9);
* re-deploy of the unchanged recipe: bytes sent (goal 0) and seconds (goal < 2 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgesdk import settings
from edgesdk.agentpkg import write_agent_zip
from edgesdk.bundle import write_bundle
from edgesdk.deploy.flow import Prepared, deploy_device
from edgesdk.deploy.sync import AgentPackage
from edgesdk.export import export_recipe, list_images
from edgesdk.recipe import load_recipe
from tests.sshd_fixture import SshServer, find_sshd


def _prepared(work: Path, images: int) -> Prepared:
    shared = settings.test_data()
    recipe = load_recipe("yolov5n")
    model = work / "model.onnx"
    export_recipe(recipe, model_dir=shared / "models", check_parity=False, output=model)
    calib = list_images(shared / "data" / "coco_val2017_first128" / "images")[:images]
    files = [("model", model)] + [("calibration_image", p) for p in calib]
    bundle = write_bundle(recipe, files, work / "bundle")
    agent = work / "edgeagent.pyz"
    return Prepared(bundle, AgentPackage(agent, write_agent_zip(agent)))


def _scp(server: SshServer, files: list[Path], dest: str) -> float:
    argv = [
        "scp",
        "-q",
        "-P",
        str(server.port),
        "-i",
        str(server.client_key),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        *map(str, files),
        f"{server.user}@{server.host}:{dest}",
    ]
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if find_sshd() is None:
        sys.exit("sshd not installed (apt-get install openssh-server)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepared = _prepared(root / "work", args.images)
        files = [prepared.bundle.path_of(e.sha256) for e in prepared.bundle.files]
        files += [prepared.bundle.root / "manifest.json", prepared.agent.path]
        total = sum(f.stat().st_size for f in files)
        first, push, redeploy, scp = [], [], [], []
        sent = []
        for i in range(args.repeats):
            server = SshServer(root=root / f"sshd{i}", sshd=find_sshd() or "")
            server.setup()
            server.start()
            known = root / f"known{i}"
            try:
                device = server.device("bench", python=sys.executable)
                import os

                os.environ["EDGESDK_CONFIG"] = str(known / "devices.yaml")
                report = deploy_device(device, prepared, accept_new=True)
                assert report.ok, report.error
                first.append(report.seconds)
                push.append(report.push_seconds)
                sent.append((report.bytes_sent, report.files_sent))
                again = deploy_device(device, prepared)
                assert again.ok and again.bytes_sent == 0, again
                redeploy.append(again.seconds)
                dest = server.home / "scp-dest"
                dest.mkdir()
                scp.append(_scp(server, files, str(dest)))
            finally:
                server.stop()
                shutil.rmtree(server.home, ignore_errors=True)
        push_mbs = total / statistics.median(push) / 1e6
        scp_mbs = total / statistics.median(scp) / 1e6
        print(f"files: {len(files)} ({total:,} bytes: model, {args.images} images, manifest, agent)")
        print("| measure | value |\n|---|---|")
        print(f"| first deploy: sent | {sent[0][1]} files, {sent[0][0]:,} B |")
        print(
            f"| first deploy: push time (transfers) | {statistics.median(push):.2f} s ({push_mbs:.1f} MB/s) |"
        )
        print(
            f"| first deploy: whole (facts, push, verify, build, activate) | {statistics.median(first):.2f} s |"
        )
        print(f"| scp of the same files | {statistics.median(scp):.2f} s ({scp_mbs:.1f} MB/s) |")
        print(f"| push throughput / scp throughput | {push_mbs / scp_mbs:.2f} |")
        print(f"| re-deploy (unchanged): sent, time | 0 B, {statistics.median(redeploy):.2f} s |")


if __name__ == "__main__":
    main()
