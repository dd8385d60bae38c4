#!/usr/bin/env bash
# Word alignments for alignment-supervised training (Garg et al. 2019): eflomal on the BPE'd (or sentencepiece'd)
# corpus of a prepare script, both directions symmetrised with grow-diag-final-and, binarised with
# fairseq-preprocess --align-suffix next to the text. Stages already complete are skipped.
#   bash scripts/prepare-alignments.sh --data DIR [--length X] [--force]
# --data DIR: the --out folder of scripts/prepare-multi30k.sh or prepare-wmt16-en-de.sh (reads DIR/bin/pipeline.txt).
# --length X: eflomal's relative number of sampling iterations (default 1.0).
# Writes DIR/align/{split}.align (token-level "i-j" links, one line per sentence pair, for every split) and
# DIR/bin-align/: DIR/bin's dictionaries and splits plus {split}.align.SRC-TGT.{bin,idx}; train on it with
# --load-alignments. All splits are aligned together (eflomal is unsupervised): the test alignments are the
# reference of scripts/alignment-agreement.py, never training data. Each stage records its options and inputs
# (STAGE/stage.txt): a re-run with others stops naming them; --force remakes what differs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA=""; LENGTH=1.0; FORCE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$(realpath -m "$2")"; shift 2 ;;
    --length) LENGTH="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" ]] || { echo "error: --data DIR is required" >&2; exit 2; }
[[ "$LENGTH" =~ ^[0-9]*[.]?[0-9]+$ && ! "$LENGTH" =~ ^[0.]+$ ]] \
  || { echo "error: --length: must be a positive number, got '$LENGTH'" >&2; exit 2; }
source "$ROOT/scripts/lib.sh"
LEGACY_SETTINGS="$DATA/bin/pipeline.txt"
[[ -f "$DATA/bin/pipeline.txt" ]] || die "$DATA/bin/pipeline.txt: missing; --data must be the --out folder of a prepare script"
SEG="$(sed -n 's/^segmentation=//p' "$DATA/bin/pipeline.txt")"
SRC="$(sed -n 's/^src=//p' "$DATA/bin/pipeline.txt")"
TGT="$(sed -n 's/^tgt=//p' "$DATA/bin/pipeline.txt")"
mapfile -t SPLITS < <(cut -f1 "$DATA/bin/splits.tsv")
command -v eflomal-align >/dev/null || die "eflomal-align not found: pip install eflomal (scripts/setup.sh installs it)"

if stage "1/2 eflomal alignments of ${SPLITS[*]} ($SEG tokens), grow-diag-final-and" "$DATA/align" \
  --option "length=$LENGTH" --option "segmentation=$SEG" --after "$DATA/$SEG"; then
  tmp="$DATA/align.tmp"
  for split in "${SPLITS[@]}"; do
    pipeline check-parallel --no-empty-lines "$DATA/$SEG/$split.$SRC" "$DATA/$SEG/$split.$TGT" >/dev/null
    cat "$DATA/$SEG/$split.$SRC" >> "$tmp/all.$SRC"
    cat "$DATA/$SEG/$split.$TGT" >> "$tmp/all.$TGT"
  done
  eflomal-align -s "$tmp/all.$SRC" -t "$tmp/all.$TGT" -f "$tmp/all.fwd" -r "$tmp/all.rev" -l "$LENGTH" --overwrite \
    > "$tmp/eflomal.log" 2>&1 || { tail -n 20 "$tmp/eflomal.log" >&2; die "eflomal-align failed (log: $tmp/eflomal.log)"; }
  pipeline symmetrize "$tmp/all.fwd" "$tmp/all.rev" "$tmp/all.align" --expect "$(pipeline count "$tmp/all.$SRC")"
  start=1
  for split in "${SPLITS[@]}"; do
    n=$(pipeline count "$DATA/$SEG/$split.$SRC")
    sed -n "${start},$((start + n - 1))p" "$tmp/all.align" > "$tmp/$split.align"
    start=$((start + n))
  done
  rm "$tmp"/all.*
  commit "$DATA/align"
fi

if stage "2/2 binarise with alignments (fairseq-preprocess --align-suffix align)" "$DATA/bin-align" \
  --after "$DATA/align" --after "$DATA/bin"; then
  out="$DATA/bin-align.tmp"
  prefixes="$out/text"
  mkdir -p "$prefixes"
  for split in "${SPLITS[@]}"; do
    for l in "$SRC" "$TGT"; do ln -s "$DATA/$SEG/$split.$l" "$prefixes/$split.$l"; done
    ln -s "$DATA/align/$split.align" "$prefixes/$split.align"
  done
  tests=("${SPLITS[@]:2}")
  testpref=$(printf "$prefixes/%s," "${tests[@]}"); testpref="${testpref%,}"
  fairseq-preprocess --source-lang "$SRC" --target-lang "$TGT" \
    --srcdict "$DATA/bin/dict.$SRC.txt" --tgtdict "$DATA/bin/dict.$TGT.txt" \
    --trainpref "$prefixes/train" --validpref "$prefixes/valid" --testpref "$testpref" --align-suffix align \
    --destdir "$out" --workers "${WORKERS:-2}" > "$out/preprocess.log" 2>&1 \
    || { tail -n 20 "$out/preprocess.log" >&2; die "fairseq-preprocess failed (log: $out/preprocess.log)"; }
  rm -r "$prefixes"
  cp "$DATA/bin/splits.tsv" "$DATA/bin/pipeline.txt" "$out/"
  commit "$DATA/bin-align"
fi
log "ready: $DATA/bin-align (train with --load-alignments; reference alignments in $DATA/align)"
