#!/usr/bin/env bash
# Your own labelled text (N ≥ 2 labels) → Moses tokens → BPE (subword-nmt) or sentencepiece → fairseq-preprocess in the
# sentence-classification layout (DIR/bin/input0/, DIR/bin/label/) that --task text_classification reads.
#   bash scripts/prepare-classification.sh --train T --valid V --test X --out DIR [--bpe-ops N] [--spm] [--lower] [--force]
# Each split is a TSV file (label<TAB>text a line; blank lines skipped) or a folder with one subfolder per label holding
# .txt files (one example a file). Labels are single tokens; valid and test labels must occur in train.
# Each stage records its options and inputs (STAGE/stage.txt): a re-run with others stops naming them; --force remakes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPE_OPS=10000
source "$ROOT/scripts/lib.sh"
declare -A SOURCE=()
rest=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --train|--valid|--test)
      [[ $# -ge 2 ]] || { echo "error: $1: needs a TSV file or a folder" >&2; exit 2; }
      SOURCE[${1#--}]="$(realpath -m "$2")"; shift 2 ;;
    --from|--src|--tgt) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
parse_prepare_args 7 "${rest[@]}"
for split in train valid test; do
  path="${SOURCE[$split]:-}"
  [[ -n "$path" ]] || { echo "error: --$split: required (a TSV file or a folder of label subfolders)" >&2; exit 2; }
  [[ -e "$path" ]] || { echo "error: --$split $path: no such file or folder" >&2; exit 2; }
done
mkdir -p "$OUT"

if stage "1/4 labelled text (train, valid, test)" "$OUT/raw" \
  --input "${SOURCE[train]}" --input "${SOURCE[valid]}" --input "${SOURCE[test]}" \
  --option "train=${SOURCE[train]}" --option "valid=${SOURCE[valid]}" --option "test=${SOURCE[test]}"; then
  pipeline labelled-extract --train "${SOURCE[train]}" --valid "${SOURCE[valid]}" --test "${SOURCE[test]}" \
    --out "$OUT/raw.tmp" >/dev/null
  printf 'train\t%s\nvalid\t%s\ntest\t%s\n' "${SOURCE[train]}" "${SOURCE[valid]}" "${SOURCE[test]}" \
    > "$OUT/raw.tmp/splits.tsv"
  commit "$OUT/raw"
fi
tokenize_labelled "2/4"
SPM_TEXT=raw segment_labelled "3/4" "$OUT/tok" "spm-text=raw"  # --spm: on raw text, as the hub segments it
binarize_labelled "4/4"
log "ready: $OUT/bin (input0/, label/: $(cut -d' ' -f1 "$OUT/bin/label/dict.txt" | tr '\n' ' '))"
