#!/usr/bin/env bash
# Fetch the tensorrt-stubs package (TensorRT 10.13 API) into DEST, repaired so mypy can read it.
#
#   tools/trt_stubs.sh DEST            then   MYPYPATH=DEST mypy device/edgeagent/backends
#
# The package is downloaded with --no-deps (its tensorrt dependency cannot install without a
# GPU) into a temp dir; only its .pyi files are copied. The generated stubs have a few syntax
# errors (a parameter named `in`, a required parameter after defaulted ones) and a module
# variable `bool` that shadows the builtin in every annotation; the repair fixes those.
# Other semantic errors inside the stubs are silenced per file with `# mypy: ignore-errors`
# so mypy reports only our code. Exit status: 0 ok, 2 usage, 3 download failed, 4 repair failed.
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
dest=$1
version=${TRT_STUBS_VERSION:-10.13.0.35.1}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
    --dest "$work/dl" "tensorrt-stubs==$version" >"$work/pip.log" 2>&1; then
  echo "cannot download tensorrt-stubs==$version:" >&2
  tail -n 5 "$work/pip.log" >&2
  exit 3
fi
"$python" -m zipfile -e "$work"/dl/tensorrt_stubs-*.whl "$work/wheel"

mkdir -p "$dest"
(cd "$work/wheel" && find . -name '*.pyi' -print0 | while IFS= read -r -d '' stub; do
  mkdir -p "$dest/$(dirname "$stub")"
  cp "$stub" "$dest/$stub"
done)

"$python" - "$dest" <<'PY' || exit 4
import ast
import keyword
import pathlib
import re
import sys

DEF = re.compile(r"^(\s*def\s+\w+\()(.*)(\)\s*(->.*)?:\s*(\.\.\.)?\s*)$")
BOOL = re.compile(r"(?<![\w.`'\"])bool(?![\w`'\"])")  # not inside strings or docs


def split_params(text):
    """Split a parameter list at top-level commas."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def fix_def(line):
    """Rename keyword parameters (in -> in_); give defaults to required params after defaulted ones."""
    match = DEF.match(line)
    if not match:
        return line
    fixed, defaulted = [], False
    for param in (p.strip() for p in split_params(match.group(2))):
        if not param:
            continue
        if param.startswith("*") or param == "/":
            defaulted = defaulted and param == "/"
            fixed.append(param)
            continue
        name = re.match(r"\w+", param).group(0)
        if keyword.iskeyword(name):
            param = name + "_" + param[len(name):]
        if "=" in param:
            defaulted = True
        elif defaulted:
            param += " = ..."
        fixed.append(param)
    return match.group(1) + ", ".join(fixed) + match.group(3)


def repair(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    shadows_bool = any(line.startswith("bool:") for line in lines)
    if shadows_bool:  # a module variable `bool: DataType` hides the builtin in every annotation
        lines = [line if line.startswith("bool:") else BOOL.sub("builtins.bool", line) for line in lines]
    for _ in range(200):
        try:
            ast.parse("\n".join(lines), filename=str(path))
            break
        except SyntaxError as err:
            index = (err.lineno or 1) - 1
            repaired = fix_def(lines[index])
            if repaired == lines[index]:
                sys.exit(f"cannot repair {path}:{err.lineno}: {err.msg}: {lines[index].strip()[:120]}")
            lines[index] = repaired
    else:
        sys.exit(f"too many syntax errors in {path}")
    header = ["# mypy: ignore-errors", "# (repaired by tools/trt_stubs.sh; errors inside these stubs are not ours)"]
    if shadows_bool:
        header.append("import builtins")
    # `from __future__` must stay first among statements: put our import after it.
    body = "\n".join(lines)
    if shadows_bool and body.startswith("from __future__ import annotations\n"):
        first, rest = body.split("\n", 1)
        body = first + "\nimport builtins\n" + rest
        header.pop()
    path.write_text("\n".join(header) + "\n" + body, encoding="utf-8")


stubs = sorted(pathlib.Path(sys.argv[1]).rglob("*.pyi"))
if not stubs:
    sys.exit(f"no .pyi files under {sys.argv[1]}")
for stub in stubs:
    repair(stub)
PY
echo "tensorrt stubs $version in $dest (MYPYPATH=$dest)"
