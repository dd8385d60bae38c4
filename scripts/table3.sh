#!/usr/bin/env bash
# The paper's Table 3 (or any table of variations, --table FILE) on a prepared corpus: each row is trained,
# validated (dev perplexity) and decoded (beam 4, α 0.6), and written to a result file the moment it finishes;
# rows with a result file are skipped, a killed row resumes from its last checkpoint. See examples/table3/README.md.
# A result file or job folder made from other data, at another scale or with other flags stops it before anything runs.
#   bash scripts/table3.sh --data PREPARED_DIR --out DIR [--rows base,A,B,C,D,E,big] [--seeds N] [--other-seeds N]
#        [--scale multi30k|paper] [--jobs K] [--threads T] [--table FILE] [--results DIR]
#        [--launcher basic|joblib|submitit_slurm|slurm_gpu] [--hydra HYDRA_OVERRIDE ...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { sed -n '2,8p' "$0"; exit 0; }
source "$ROOT/scripts/lib.sh"
log "table of variations (fairseq_vanilla.experiments.table.runner)"
# exec: this script's pid is the driver's, whose trainings end with it (SIGTERM, SIGHUP, Ctrl-C, even SIGKILL)
exec "$PY" -m fairseq_vanilla.experiments.table.runner "$@"
