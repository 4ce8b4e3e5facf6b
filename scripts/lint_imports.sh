#!/usr/bin/env bash
# The import-linter contracts of pyproject.toml, checked on the package as it installs: the
# folders flows/, tasks/, connectors/ become revops.flows, revops.tasks, revops.connectors only
# in the built package (the editable install maps them), so the check builds it first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
target="$(mktemp -d)"
# setuptools builds in the source tree (build/); leave the work tree as it was.
had_build=0; [ -e "$root/build" ] && had_build=1
cleanup() { rm -rf "$target"; [ "$had_build" = 1 ] || rm -rf "$root/build"; }
trap cleanup EXIT
"$python" -m pip install --quiet --no-deps --target "$target" "$root" 2>/dev/null
cd "$target"
PYTHONPATH="$target" "$(dirname "$python")/lint-imports" "$root/pyproject.toml" --no-cache
