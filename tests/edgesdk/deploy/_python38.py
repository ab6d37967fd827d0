"""Find a real Python 3.8 interpreter (JetPack 5's version) on this machine, if any."""

from __future__ import annotations

import functools
import glob
import os
import pwd
import shutil
import subprocess


def _candidates() -> list[str]:
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".pyenv")
    found = [shutil.which("python3.8") or "", "/usr/bin/python3.8"]
    return [
        p
        for p in found + sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.8*", "bin", "python3.8")))
        if p
    ]


@functools.lru_cache(maxsize=1)
def python38() -> str | None:
    """Absolute path of a working Python 3.8 interpreter (pyenv shims resolved), or None."""
    for candidate in _candidates():
        try:
            out = subprocess.run(
                [
                    candidate,
                    "-c",
                    "import sys; print(sys.executable if sys.version_info[:2] == (3, 8) else '')",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None
