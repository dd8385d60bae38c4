#!/usr/bin/env bash
# The equal-budget comparison on real data: Wu et al. 2021's text-only Transformer on Multi30k, trained as vanilla_transformer and as
# fairseq's own transformer with identical flags (scripts/train.sh --preset wu2021), last 10 epoch checkpoints
# averaged, beam 5 on test2016; prints BLEU (lower-cased tokenised, detokenised sacreBLEU), time and tokens/s.
#   bash bench/multi30k_compare.sh --data PREPARED_DIR --work DIR [--parallel] [--models "vanilla_transformer transformer"]
# PREPARED_DIR: scripts/prepare-multi30k.sh --lower --out PREPARED_DIR. --parallel trains both at once (one GPU).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA=""; WORK=""; PARALLEL=0; MODELS="vanilla_transformer transformer"; EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --parallel) PARALLEL=1; shift ;;
    --models) MODELS="$2"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$WORK" ]] || { echo "error: --data and --work are required" >&2; exit 2; }
mkdir -p "$WORK"

train() {
  local arch="$1"
  local t0=$SECONDS
  bash "$ROOT/scripts/train.sh" --preset wu2021 --arch "$arch" --data "$DATA/bin" --save "$WORK/$arch" \
    -- --no-progress-bar "${EXTRA[@]}" > "$WORK/$arch.stdout" 2>&1
  echo $((SECONDS - t0)) > "$WORK/$arch/wall_seconds"
}
pids=()
for arch in $MODELS; do
  if [[ "$PARALLEL" == 1 ]]; then train "$arch" & pids+=($!); else train "$arch"; fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

for arch in $MODELS; do
  bash "$ROOT/scripts/generate.sh" --data "$DATA" --path "$WORK/$arch/checkpoint_last.pt" --average-last 10 \
    --out "$WORK/$arch/test" --beam 5 > "$WORK/$arch/generate.stdout" 2>&1
done

echo "| model | lower-cased tokenised BLEU | detokenised sacreBLEU (lc) | training wall s | train wps (last epoch) | final valid nll |"
echo "| --- | --- | --- | --- | --- | --- |"
for arch in $MODELS; do
  lc=$(grep -o 'lower-cased: BLEU4 = [0-9.]*' "$WORK/$arch/test/bleu.txt" | grep -o '[0-9.]*$')
  sb=$(grep -o 'version:[0-9.]* = [0-9.]*' "$WORK/$arch/test/bleu.txt" | grep -o '[0-9.]*$')
  wps=$(grep -E '\| train \| epoch' "$WORK/$arch/train.log" | tail -1 | grep -o 'wps [0-9.]*' | cut -d' ' -f2)
  nll=$(grep -E 'valid on' "$WORK/$arch/train.log" | tail -1 | grep -o 'nll_loss [0-9.]*' | cut -d' ' -f2)
  echo "| $arch | $lc | $sb | $(cat "$WORK/$arch/wall_seconds") | $wps | $nll |"
done
