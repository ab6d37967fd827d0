"""Package the device agent (``device/edgeagent``) as one zipapp: ``edgeagent.pyz``.

The archive is deterministic (sorted entries, fixed timestamps, no ``__pycache__``), so
the same agent source gives the same bytes and the same sha256 — a device that already
has it is sent nothing.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import edgeagent

_EPOCH = (1980, 1, 1, 0, 0, 0)
_MAIN = b"import sys\nfrom edgeagent.cli import main\nsys.exit(main())\n"


def agent_source_dir() -> Path:
    """The folder of the ``edgeagent`` package being packaged."""
    return Path(edgeagent.__file__).resolve().parent


def build_agent_zip() -> bytes:
    """The zipapp's bytes: ``#!/usr/bin/env python3`` + a zip of edgeagent's .py files."""
    root = agent_source_dir()
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        entries = [("__main__.py", _MAIN)]
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = Path("edgeagent") / path.relative_to(root)
            entries.append((rel.as_posix(), path.read_bytes()))
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def write_agent_zip(path: Path) -> str:
    """Write the zipapp to ``path`` (mode 0755); returns its sha256."""
    data = build_agent_zip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()
