#!/usr/bin/env bash
# IMDB sentiment (aclImdb v1): reviews → Moses tokens → BPE (subword-nmt) or sentencepiece → fairseq-preprocess in the
# sentence-classification layout (DIR/bin/input0/, DIR/bin/label/). Stages already complete are skipped.
#   bash scripts/prepare-imdb.sh --out DIR [--from ARCHIVE_OR_FOLDER] [--bpe-ops N] [--spm] [--lower] [--force]
#                                [--valid-size 2500] [--seed 1] [--augment [--deletion 0.2 --swap 0.2]]
# --from: aclImdb_v1.tar.gz (or the labelled copy) or its unpacked aclImdb folder; without it the archive is downloaded.
# valid: --valid-size reviews held out of the 25,000 training reviews, half of each label (seeded); test: the official
# 25,000 test reviews. --augment (Trans-2): the training set doubled with a randomly-deleted-and-swapped copy.
# Each stage records its options and inputs (STAGE/stage.txt): a re-run with others stops naming them; --force remakes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPE_OPS=10000
VALID_SIZE=2500; SEED=1; AUGMENT=0; DELETION=0.2; SWAP=0.2
URL="${IMDB_URL:-https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz}"
source "$ROOT/scripts/lib.sh"
rest=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --valid-size) VALID_SIZE="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --augment) AUGMENT=1; shift ;;
    --deletion) DELETION="$2"; shift 2 ;;
    --swap) SWAP="$2"; shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
FROM_MAY_BE_FILE=1 parse_prepare_args 9 "${rest[@]}"
mkdir -p "$OUT"

source_option=(--option "url=$URL"); [[ -n "$FROM" ]] && source_option=(--option "from=given" --input "$FROM")
if stage "1/5 reviews from aclImdb (valid: $VALID_SIZE held out of train, seed $SEED)" "$OUT/raw" \
  --option "valid-size=$VALID_SIZE" --option "seed=$SEED" "${source_option[@]}"; then
  src="$FROM"
  if [[ -z "$src" ]]; then
    src="$OUT/aclImdb_v1.tar.gz"
    [[ -f "$src" ]] || curl -fsSL "$URL" -o "$src.part" || die "download of $URL failed (offline? use --from ARCHIVE)"
    [[ -f "$src" ]] || mv "$src.part" "$src"
  fi
  pipeline imdb-extract --from "$src" --out "$OUT/raw.tmp" --valid-size "$VALID_SIZE" --seed "$SEED"
  printf 'train\t%s:train minus valid\nvalid\t%s:train, %s held out (seed %s)\ntest\t%s:test\n' \
    "$src" "$src" "$VALID_SIZE" "$SEED" "$src" > "$OUT/raw.tmp/splits.tsv"
  commit "$OUT/raw"
fi

tokenize_labelled "2/5"

TEXT="$OUT/tok"
if [[ "$AUGMENT" == 1 ]]; then
  if stage "3/5 offline augmentation: random deletion $DELETION, random swap $SWAP (training set doubled)" "$OUT/aug" \
    --option "deletion=$DELETION" --option "swap=$SWAP" --option "seed=$SEED" --after "$OUT/tok"; then
    pipeline augment --deletion "$DELETION" --swap "$SWAP" --seed "$SEED" \
      "$TEXT/train.txt" "$TEXT/train.label" "$OUT/aug.tmp/train.txt" "$OUT/aug.tmp/train.label" >/dev/null
    for split in valid test; do cp "$TEXT/$split.txt" "$TEXT/$split.label" "$OUT/aug.tmp/"; done
    commit "$OUT/aug"
  fi
  TEXT="$OUT/aug"
else
  log "3/5 offline augmentation: not asked (--augment)"
fi

segment_labelled "4/5" "$TEXT" "augment=$AUGMENT"
# Long reviews are kept as they are, but counted: the classifier keeps the first --max-positions tokens
# (imdb_classification's --truncation; 512 by default, <s> and </s> included).
binarize_labelled "5/5" "augment=$AUGMENT"
log "ready: $OUT/bin (input0/, label/: $(tr '\n' ' ' < "$OUT/bin/label/dict.txt"))"
