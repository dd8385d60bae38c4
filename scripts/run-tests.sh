#!/usr/bin/env bash
# Install whatever is missing (scripts/setup.sh) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
echo "[tests] pytest (data sets from \${FAIRSEQ_VANILLA_DATA:-../shared/data})"
exec "$ROOT/.venv/bin/python" -m pytest -q -rs "$@" tests
