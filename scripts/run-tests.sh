#!/usr/bin/env bash
# Install whatever is missing (scripts/setup.sh), check lint and format (ruff, ruff.toml) and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
echo "[tests] ruff check and ruff format --check (ruff.toml)"
"$ROOT/.venv/bin/ruff" check "$ROOT"
"$ROOT/.venv/bin/ruff" format --check "$ROOT"
echo "[tests] pytest (data sets from \${FAIRSEQ_VANILLA_DATA:-../shared/data})"
exec "$ROOT/.venv/bin/python" -m pytest -q -rs "$@" tests
