#!/usr/bin/env bash
# WMT16 multimodal task 1 (Multi30k), English→German: raw .gz files → Moses tokens → joint BPE (or sentencepiece)
# → fairseq-preprocess --joined-dictionary. Stages already complete are skipped; each writes NAME.tmp, then renames.
#   bash scripts/prepare-multi30k.sh --out DIR [--from DIR] [--bpe-ops N] [--spm] [--lower] [--src en --tgt de] [--force]
# --from DIR: the Multi30k raw files ({train,val,test_*}.{en,de}[.gz]); without it they are downloaded.
# Splits: train → train, val → valid, test_2016_flickr → test, other test_* → test1, test2, … in name order;
# DIR/bin/splits.tsv maps each fairseq split to its file. Each stage records its options and inputs (STAGE/stage.txt):
# a re-run with others stops naming them; --force remakes what differs. Lines too long for the models are counted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPE_OPS=10000
URL="${MULTI30K_URL:-https://github.com/multi30k/dataset/raw/master/data/task1/raw}"
source "$ROOT/scripts/lib.sh"
parse_prepare_args 9 "$@"
mkdir -p "$OUT"

# fetch_or_copy NAME DEST: NAME.gz or NAME from --from, else downloaded NAME.gz; decompressed into DEST.
fetch_or_copy() {
  local name="$1" dest="$2"
  if [[ -n "$FROM" ]]; then
    if [[ -f "$FROM/$name.gz" ]]; then gzip -dc "$FROM/$name.gz" > "$dest" || die "$FROM/$name.gz: cannot decompress"
    elif [[ -f "$FROM/$name" ]]; then cp "$FROM/$name" "$dest"
    else die "$FROM/$name(.gz): missing"; fi
  else
    curl -fsSL "$URL/$name.gz" -o "$dest.gz" || die "download of $URL/$name.gz failed (offline? use --from DIR)"
    gzip -dc "$dest.gz" > "$dest" && rm "$dest.gz"
  fi
}

sources=(--option "url=$URL")
if [[ -n "$FROM" ]]; then
  mapfile -t from_files < <(find "$FROM" -maxdepth 1 -type f \( -name "train.*" -o -name "val.*" -o -name "test_*" \) | sort)
  sources=(--option "from=files"); for f in "${from_files[@]}"; do sources+=(--input "$f"); done
fi
if stage "1/4 raw Multi30k files" "$OUT/raw" --option "src=$SRC" --option "tgt=$TGT" "${sources[@]}"; then
  tests=(test_2016_flickr)
  if [[ -n "$FROM" ]]; then
    while read -r t; do [[ "$t" != test_2016_flickr ]] && tests+=("$t"); done < <(
      find "$FROM" -maxdepth 1 -name "test_*.$SRC*" -printf '%f\n' | sed -E "s/\.$SRC(\.gz)?$//" | sort -u)
  fi
  : > "$OUT/raw.tmp/splits.tsv"
  i=0
  for pair in "train:train" "val:valid" $(for t in "${tests[@]}"; do echo "$t:test"; done); do
    file="${pair%%:*}" split="${pair##*:}"
    if [[ "$split" == test ]]; then [[ $i -gt 0 ]] && split="test$i"; i=$((i + 1)); fi
    for l in "$SRC" "$TGT"; do fetch_or_copy "$file.$l" "$OUT/raw.tmp/$split.$l"; done
    pipeline check-parallel "$OUT/raw.tmp/$split.$SRC" "$OUT/raw.tmp/$split.$TGT" \
      --labels "${FROM:-$URL}/$file.$SRC" "${FROM:-$URL}/$file.$TGT" >/dev/null
    printf '%s\t%s\n' "$split" "$file" >> "$OUT/raw.tmp/splits.tsv"
  done
  commit "$OUT/raw"
fi
mapfile -t SPLITS < <(cut -f1 "$OUT/raw/splits.tsv")
TESTS=("${SPLITS[@]:2}")

if stage "2/4 Moses tokenisation (sacremoses)" "$OUT/tok" --option "lower=$LOWER" --after "$OUT/raw"; then
  tokenize_corpus "$OUT/raw" "$OUT/tok.tmp" "$SRC" "$TGT" "${SPLITS[@]}"
  commit "$OUT/tok"
fi
if stage "3/4 joint ${SEGMENTATION}, $BPE_OPS" "$OUT/$SEGMENTATION" --option "segmentation=$SEGMENTATION" \
  --option "ops=$BPE_OPS" --option "lower=$LOWER" --after "$OUT/raw" --after "$OUT/tok"; then
  segment_corpus "$OUT/tok" "$OUT/raw" "$OUT/$SEGMENTATION.tmp" "$SRC" "$TGT" "$BPE_OPS" "${SPLITS[@]}"
  commit "$OUT/$SEGMENTATION"
fi
# Kept as they are, but counted: the presets' --max-source/target-positions are 1024 (</s> included).
LONG_LINES_WHY="; fairseq-train stops on them (give --skip-invalid-size-inputs-valid-test or larger --max-*-positions)" \
  warn_long_lines 1023 "$OUT/$SEGMENTATION"/*."$SRC" "$OUT/$SEGMENTATION"/*."$TGT"
binarize_prepared 4/4 "${TESTS[@]}"
