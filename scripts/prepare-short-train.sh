#!/usr/bin/env bash
# A prepared corpus whose training pairs are short: only the pairs of DATA's training split with at most N BPE tokens
# on both sides are kept; valid and test stay whole, the BPE codes and the dictionary are DATA's (so the two corpora
# share one vocabulary). For the positions experiment (examples/positions/): train on short sentences, translate long
# ones never seen in training.
#   bash scripts/prepare-short-train.sh --data runs/multi30k --max-tokens 15 --out runs/multi30k-short15 [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="" OUT="" MAX_TOKENS="" FORCE=0
source "$ROOT/scripts/lib.sh"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$(realpath -m "$2")"; shift 2 ;;
    --out) OUT="$(realpath -m "$2")"; shift 2 ;;
    --max-tokens) MAX_TOKENS="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "error: $1: unknown option (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" ]] || { echo "error: --data: required (a prepare script's --out folder)" >&2; exit 2; }
[[ -n "$OUT" ]] || { echo "error: --out: required" >&2; exit 2; }
[[ "$MAX_TOKENS" =~ ^[1-9][0-9]*$ ]] || { echo "error: --max-tokens: a positive integer, got '$MAX_TOKENS'" >&2; exit 2; }
[[ "$OUT" != "$DATA" ]] || { echo "error: --out: must differ from --data ($DATA)" >&2; exit 2; }
for f in bin/pipeline.txt bin/splits.tsv bin/dict."${SRC:-en}".txt; do
  [[ -f "$DATA/$f" ]] || { echo "error: --data: $DATA/$f missing (not a prepared corpus?)" >&2; exit 2; }
done
SEGMENTATION=$(sed -n 's/^segmentation=//p' "$DATA/bin/pipeline.txt")
SRC=$(sed -n 's/^src=//p' "$DATA/bin/pipeline.txt")
TGT=$(sed -n 's/^tgt=//p' "$DATA/bin/pipeline.txt")
mapfile -t SPLITS < <(cut -f1 "$DATA/bin/splits.tsv")
TESTS=("${SPLITS[@]:2}")
LEGACY_SETTINGS=/dev/null
mkdir -p "$OUT"

if stage "1/2 training pairs of ≤ $MAX_TOKENS tokens a side" "$OUT/$SEGMENTATION" --option "max_tokens=$MAX_TOKENS" \
  --input "$DATA/$SEGMENTATION" --input "$DATA/raw"; then
  if [[ -e "$OUT/raw" ]]; then  # the references, whole: a copy of DATA's, or refused
    diff -rq "$DATA/raw" "$OUT/raw" > /dev/null || die "--out: $OUT/raw exists and is not a copy of $DATA/raw"
  else
    cp -r "$DATA/raw" "$OUT/raw.tmp" && mv "$OUT/raw.tmp" "$OUT/raw"
  fi
  for f in "$DATA/$SEGMENTATION"/*; do
    case "$(basename "$f")" in train.*|stage.txt) ;; *) cp "$f" "$OUT/$SEGMENTATION.tmp/" ;; esac
  done
  kept=$(pipeline clean "$DATA/$SEGMENTATION/train.$SRC" "$DATA/$SEGMENTATION/train.$TGT" \
    "$OUT/$SEGMENTATION.tmp/train.$SRC" "$OUT/$SEGMENTATION.tmp/train.$TGT" --min 1 --max "$MAX_TOKENS" --ratio 1e9)
  log "kept $kept of $(pipeline count "$DATA/$SEGMENTATION/train.$SRC") training pairs"
  commit "$OUT/$SEGMENTATION"
fi

if stage "2/2 binarise with $DATA's dictionary" "$OUT/bin" --after "$OUT/$SEGMENTATION" \
  --input "$DATA/bin/dict.$SRC.txt"; then
  tests=$(printf "$OUT/$SEGMENTATION/%s," "${TESTS[@]}"); tests="${tests%,}"
  fairseq-preprocess --source-lang "$SRC" --target-lang "$TGT" --joined-dictionary --srcdict "$DATA/bin/dict.$SRC.txt" \
    --trainpref "$OUT/$SEGMENTATION/train" --validpref "$OUT/$SEGMENTATION/valid" --testpref "$tests" \
    --destdir "$OUT/bin.tmp" --workers "${WORKERS:-2}" > "$OUT/bin.tmp/preprocess.log" 2>&1 \
    || { tail -n 20 "$OUT/bin.tmp/preprocess.log" >&2; die "fairseq-preprocess failed (log: $OUT/bin.tmp/preprocess.log)"; }
  cp "$DATA/bin/splits.tsv" "$DATA/bin/pipeline.txt" "$OUT/bin.tmp/"
  commit "$OUT/bin"
fi
log "ready: $OUT/bin (training pairs ≤ $MAX_TOKENS tokens; ${SPLITS[*]:1} whole)"
