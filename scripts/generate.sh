#!/usr/bin/env bash
# Translate one split with beam search, detokenise, and report BLEU four ways (each labelled):
# detokenised sacreBLEU with its signature, fairseq-score on Moses-tokenised text, the same lower-cased, and the
# same compound-split (as the paper's WMT14 numbers).
# Checks that there is exactly one hypothesis per source sentence.
#   bash scripts/generate.sh --data PREPARED_DIR --path CHECKPOINT --out DIR [--split test] [--beam 5] [--lenpen 1.0]
#        [--average-last N]   (average the last N epoch checkpoints beside CHECKPOINT first)
#        [--engine fairseq|ctranslate2 [--quantization float32|int8|int8_float32]] [--force (into any --out folder)]
#        (ctranslate2: export CHECKPOINT to OUT/ctranslate2 and translate with it, same search, same outputs)
# PREPARED_DIR is the --out of a prepare script (raw/, bin/ with splits.tsv and pipeline.txt inside).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA=""; CKPT=""; OUT=""; FORCE=(); SPLIT=test; BEAM=5; LENPEN=1.0; AVG=0; BATCH=128; ENGINE=fairseq; QUANT=float32
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --path) CKPT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --split) SPLIT="$2"; shift 2 ;;
    --beam) BEAM="$2"; shift 2 ;;
    --lenpen) LENPEN="$2"; shift 2 ;;
    --batch-size) BATCH="$2"; shift 2 ;;
    --average-last) AVG="$2"; shift 2 ;;
    --engine) ENGINE="$2"; shift 2 ;;
    --quantization) QUANT="$2"; shift 2 ;;
    --force) FORCE=(--force); shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$CKPT" && -n "$OUT" ]] || { echo "error: --data, --path and --out are required" >&2; exit 2; }
[[ "$ENGINE" == fairseq || "$ENGINE" == ctranslate2 ]] || { echo "error: --engine must be fairseq or ctranslate2, got '$ENGINE'" >&2; exit 2; }
[[ "$BEAM" =~ ^[1-9][0-9]*$ ]] || { echo "error: --beam: must be a positive integer, got '$BEAM'" >&2; exit 2; }
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || { echo "error: --batch-size: must be a positive integer, got '$BATCH'" >&2; exit 2; }
[[ "$AVG" =~ ^[0-9]+$ ]] || { echo "error: --average-last: must be a non-negative integer, got '$AVG'" >&2; exit 2; }
[[ "$LENPEN" =~ ^-?[0-9]+([.][0-9]*)?$ ]] || { echo "error: --lenpen: must be a number, got '$LENPEN'" >&2; exit 2; }
[[ -f "$DATA/bin/pipeline.txt" ]] || { echo "error: $DATA/bin/pipeline.txt missing: --data must be a prepare script's --out" >&2; exit 2; }
[[ -f "$CKPT" ]] || { echo "error: --path $CKPT: no such checkpoint" >&2; exit 2; }
source "$ROOT/scripts/lib.sh"
SEGMENTATION=$(sed -n 's/^segmentation=//p' "$DATA/bin/pipeline.txt")
LOWER=$(sed -n 's/^lower=//p' "$DATA/bin/pipeline.txt")
TGT=$(sed -n 's/^tgt=//p' "$DATA/bin/pipeline.txt")
export SEGMENTATION LOWER
[[ -f "$DATA/raw/$SPLIT.$TGT" ]] || die "$DATA/raw/$SPLIT.$TGT: no reference for split $SPLIT"

# OUT is written only if it is new, empty or an earlier generate.sh output (only its files replaced) or with --force,
# and never if it holds CKPT or DATA (fairseq_vanilla/text/output_dirs.py); OUT.tmp is written and moved in at the end.
OUT="${OUT%/}"
claim=(--tool generate.sh --keep "$CKPT" --keep "$DATA" "${FORCE[@]}")
pipeline claim-output "${claim[@]}" "$OUT" > /dev/null || exit 2
trap 'rc=$?; [[ $rc -eq 0 ]] || rm -rf -- "$OUT.tmp"; exit $rc' EXIT  # a failed run leaves no OUT.tmp
if [[ "$AVG" -gt 0 ]]; then
  avg="$(dirname "$CKPT")/checkpoint.avg$AVG.pt"
  log "average the last $AVG checkpoints → $avg"
  "$PY" "$ROOT/scripts/average-checkpoints.py" --dir "$(dirname "$CKPT")" --last "$AVG" --out "$avg"
  CKPT="$avg"
fi
if [[ "$ENGINE" == ctranslate2 ]]; then
  log "export to CTranslate2 ($QUANT) → $OUT/ctranslate2"
  "$PY" "$ROOT/scripts/export-ctranslate2.py" --path "$CKPT" --data "$DATA" --out "$OUT.tmp/ctranslate2" \
    --quantization "$QUANT" >/dev/null
  # translate_and_score calls fairseq-generate BIN --user-dir D --path C FLAGS…; with this engine the exported
  # model answers instead, with the same flags, the same binarised source tokens and fairseq-generate's H- lines.
  fairseq-generate() {
    local bin="$1" args=(); shift
    while [[ $# -gt 0 ]]; do case "$1" in --user-dir|--path) shift 2 ;; *) args+=("$1"); shift ;; esac; done
    "$PY" "$ROOT/scripts/translate.py" --model "$OUT.tmp/ctranslate2" --data-bin "$bin" \
      --source-lang "$(sed -n 's/^src=//p' "$DATA/bin/pipeline.txt")" --target-lang "$TGT" "${args[@]}"
  }
fi
log "$ENGINE $SPLIT, beam $BEAM, lenpen $LENPEN ($CKPT)"
translate_and_score "$DATA/bin" "$CKPT" "$SPLIT" "$DATA/raw/$SPLIT.$TGT" "$TGT" "$OUT.tmp" \
  --beam "$BEAM" --lenpen "$LENPEN" --batch-size "$BATCH"
pipeline commit-output "${claim[@]}" "$OUT"
cat "$OUT/bleu.txt"
