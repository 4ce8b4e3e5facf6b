#!/usr/bin/env bash
# The import-linter contracts of pyproject.toml, checked on the package as it installs: the
# folders flows/, tasks/, connectors/ become revops.flows, revops.tasks, revops.connectors only
# in the built package (the editable install maps them), so the check builds it first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
target="$(mktemp -d)"
trap 'rm -rf "$target"' EXIT
"$python" -m pip install --quiet --no-deps --target "$target" "$root" 2>/dev/null
cd "$target"
PYTHONPATH="$target" "$(dirname "$python")/lint-imports" "$root/pyproject.toml" --no-cache
