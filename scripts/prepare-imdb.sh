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
SPLITS=(train valid test)

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

if stage "2/5 Moses tokenisation (sacremoses)" "$OUT/tok" --option "lower=$LOWER" --after "$OUT/raw"; then
  lower=(); [[ "$LOWER" == 1 ]] && lower=(--lower)
  for split in "${SPLITS[@]}"; do
    pipeline tokenize --lang en "${lower[@]}" "$OUT/raw/$split.txt" "$OUT/tok.tmp/$split.txt" &
  done
  wait -n && wait -n && wait -n || die "tokenisation failed"
  for split in "${SPLITS[@]}"; do cp "$OUT/raw/$split.label" "$OUT/tok.tmp/$split.label"; done
  commit "$OUT/tok"
fi

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

if stage "4/5 $SEGMENTATION, $BPE_OPS" "$OUT/$SEGMENTATION" --option "segmentation=$SEGMENTATION" \
  --option "ops=$BPE_OPS" --option "augment=$AUGMENT" --after "$TEXT"; then
  seg="$OUT/$SEGMENTATION.tmp"
  if [[ "$SEGMENTATION" == spm ]]; then
    pipeline spm-train --model-prefix "$seg/spm" --vocab-size "$BPE_OPS" "$TEXT/train.txt"
    for split in "${SPLITS[@]}"; do pipeline spm-encode --model "$seg/spm.model" "$TEXT/$split.txt" "$seg/$split.txt"; done
  else
    subword-nmt learn-bpe -s "$BPE_OPS" < "$TEXT/train.txt" > "$seg/codes"
    for split in "${SPLITS[@]}"; do
      subword-nmt apply-bpe -c "$seg/codes" < "$TEXT/$split.txt" > "$seg/$split.txt" &
    done
    wait -n && wait -n && wait -n || die "apply-bpe failed"
  fi
  for split in "${SPLITS[@]}"; do cp "$TEXT/$split.label" "$seg/$split.label"; done
  commit "$OUT/$SEGMENTATION"
fi

# Kept as they are, but counted: the classifier keeps the first --max-positions tokens (imdb_classification's
# --truncation; 512 by default, <s> and </s> included).
LONG_LINES_WHY="; the classifier truncates them (imdb_classification --max-positions, --truncation)" \
  warn_long_lines 510 "$OUT/$SEGMENTATION"/{train,valid,test}.txt
if stage "5/5 binarise (fairseq-preprocess --only-source: input0/ and label/)" "$OUT/bin" \
  --option "segmentation=$SEGMENTATION" --option "ops=$BPE_OPS" --option "lower=$LOWER" --option "augment=$AUGMENT" \
  --after "$OUT/$SEGMENTATION"; then
  seg="$OUT/$SEGMENTATION"
  for part in input0:txt:8 label:label:1; do  # label dictionary not padded with madeupword entries
    IFS=: read -r name ext factor <<< "$part"
    fairseq-preprocess --only-source --padding-factor "$factor" --trainpref "$seg/train.$ext" --validpref "$seg/valid.$ext" \
      --testpref "$seg/test.$ext" --destdir "$OUT/bin.tmp/$name" --workers "${WORKERS:-2}" \
      > "$OUT/bin.tmp/$name.preprocess.log" 2>&1 \
      || { tail -n 20 "$OUT/bin.tmp/$name.preprocess.log" >&2; die "fairseq-preprocess failed for $name"; }
  done
  cp "$OUT/raw/splits.tsv" "$OUT/bin.tmp/splits.tsv"
  printf 'segmentation=%s\nlower=%s\nops=%s\naugment=%s\n' "$SEGMENTATION" "$LOWER" "$BPE_OPS" "$AUGMENT" \
    > "$OUT/bin.tmp/pipeline.txt"
  commit "$OUT/bin"
fi
log "ready: $OUT/bin (input0/, label/: $(tr '\n' ' ' < "$OUT/bin/label/dict.txt"))"
