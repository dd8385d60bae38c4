#!/usr/bin/env bash
# Is system B better than system A? Paired bootstrap resampling (sacreBLEU's own --paired-bs, 1000 resamples):
# BLEU and chrF of both, the difference, and its p-value. Files: detokenised text, one sentence a line, parallel.
#   bash scripts/compare.sh HYP_A HYP_B REF [--lowercase] [--samples N]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 3 ]] || { sed -n '2,4p' "$0"; exit 2; }
source "$ROOT/scripts/lib.sh"
exec "$PY" -m fairseq_vanilla.evaluation.significance "$@"
