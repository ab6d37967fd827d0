"""Benchmark (not a test): SSHTransport.put vs scp of the same file over a loopback sshd.

Run from the repo root::

    python -m tests.benchmarks.bench_put --size-mb 50 --repeats 5

Prints MB/s (1 MB = 10^6 bytes) for: scp (a fresh connection per copy, as a user runs it),
put with a fresh connection (connect + put), and put on an open connection, each the median
of ``--repeats`` runs; then the same for paramiko's default window and cipher, for the
before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from edgesdk.deploy import ssh
from edgesdk.deploy.ssh import SSHTransport
from tests.sshd_fixture import SshServer, find_sshd


def _median_seconds(func, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _scp(server: SshServer, known_hosts: Path, source: Path) -> None:
    subprocess.run(
        [
            "scp", "-q", "-i", str(server.client_key), "-P", str(server.port),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", str(source), f"{server.user}@{server.host}:{server.home / 'scp.bin'}",
        ],
        check=True,
    )  # fmt: skip


def _transport(server: SshServer, known_hosts: Path) -> SSHTransport:
    return SSHTransport(
        server.host, port=server.port, user=server.user, key=server.client_key, use_agent=False,
        known_hosts=[known_hosts], store=known_hosts,
    )  # fmt: skip


def _measure(server: SshServer, known_hosts: Path, source: Path, repeats: int) -> dict[str, float]:
    def fresh() -> None:
        with _transport(server, known_hosts) as t:
            t.put(source, "put.bin")

    with _transport(server, known_hosts) as t:
        t.put(source, "put.bin")  # warm up: connect, open SFTP
        warm = _median_seconds(lambda: t.put(source, "put.bin"), repeats)
        cipher = t._client().get_transport().local_cipher
    size = source.stat().st_size / 1e6
    return {"fresh": size / _median_seconds(fresh, repeats), "open": size / warm, "cipher": cipher}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sshd = find_sshd()
    if sshd is None:
        raise SystemExit("sshd not installed")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = SshServer(root=root / "server", sshd=sshd)
        server.setup()
        server.start()
        try:
            known_hosts = root / "known_hosts"
            known_hosts.write_text(server.known_hosts_line())
            source = root / "payload.bin"
            source.write_bytes(os.urandom(args.size_mb * 1_000_000))
            scp = args.size_mb / _median_seconds(lambda: _scp(server, known_hosts, source), args.repeats)
            tuned = _measure(server, known_hosts, source, args.repeats)
            # paramiko's defaults: 2 MiB window, its cipher order, 32 KiB write requests
            ssh.WINDOW_SIZE, ssh.PREFERRED_CIPHERS = 2 * 1024 * 1024, ()
            SSHTransport._write_size = lambda self, sftp, remote_file: 32768  # type: ignore[method-assign]
            default = _measure(server, known_hosts, source, args.repeats)
        finally:
            server.stop()
    print(f"file {args.size_mb} MB, median of {args.repeats}, cores={os.cpu_count()}")
    print(f"scp (fresh connection)            {scp:7.1f} MB/s")
    for label, row in (("edgesdk (tuned)", tuned), ("paramiko defaults", default)):
        print(
            f"{label:26s} fresh {row['fresh']:7.1f} MB/s ({row['fresh'] / scp:.2f}x scp)  "
            f"open {row['open']:7.1f} MB/s  cipher {row['cipher']}"
        )


if __name__ == "__main__":
    main()
