#!/usr/bin/env bash
# Is system B better than system A? Files: detokenised text, one sentence a line, parallel.
#   bash scripts/compare.sh A1[,A2,A3] B1[,B2,B3] REF [--lowercase] [--samples N]
# Seeds (comma-separated, one file per training seed): BLEU and chrF mean ± sd per system, Δ with its 95 % interval
# over seeds (Welch t; a single run against ≥ 2 seeds: prediction interval), last line 'verdict: A better',
# 'verdict: B better' or 'verdict: within seed noise'. One file each: sacreBLEU's paired bootstrap (test-set noise).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 3 ]] || { sed -n '2,6p' "$0"; exit 2; }
source "$ROOT/scripts/lib.sh"
exec "$PY" -m fairseq_vanilla.evaluation.significance "$@"
