#!/usr/bin/env bash
# WMT16 multimodal task 1 (Multi30k), English→German: raw .gz files → Moses tokens → joint BPE (or sentencepiece)
# → fairseq-preprocess --joined-dictionary. Stages already complete are skipped; each writes NAME.tmp, then renames.
#   bash scripts/prepare-multi30k.sh --out DIR [--from DIR] [--bpe-ops N] [--spm] [--lower] [--src en --tgt de]
# --from DIR: the Multi30k raw files ({train,val,test_*}.{en,de}[.gz]); without it they are downloaded.
# Splits: train → train, val → valid, test_2016_flickr → test, other test_* → test1, test2, … in name order;
# DIR/bin/splits.tsv maps each fairseq split to its file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPE_OPS=10000
URL="${MULTI30K_URL:-https://github.com/multi30k/dataset/raw/master/data/task1/raw}"
source "$ROOT/scripts/lib.sh"
parse_prepare_args 7 "$@"
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

if stage "1/4 raw Multi30k files" "$OUT/raw"; then
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

if stage "2/4 Moses tokenisation (sacremoses)" "$OUT/tok"; then
  tokenize_corpus "$OUT/raw" "$OUT/tok.tmp" "$SRC" "$TGT" "${SPLITS[@]}"
  commit "$OUT/tok"
fi
if stage "3/4 joint ${SEGMENTATION}, $BPE_OPS" "$OUT/$SEGMENTATION"; then
  segment_corpus "$OUT/tok" "$OUT/raw" "$OUT/$SEGMENTATION.tmp" "$SRC" "$TGT" "$BPE_OPS" "${SPLITS[@]}"
  commit "$OUT/$SEGMENTATION"
fi
binarize_prepared 4/4 "${TESTS[@]}"
