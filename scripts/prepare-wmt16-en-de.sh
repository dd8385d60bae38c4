#!/usr/bin/env bash
# WMT16 news task English→German: Europarl v7 + Common Crawl + News Commentary v11 for training, newstest2015 for
# validation, newstest2014 (fairseq split `test`) and newstest2016 (`test1`) for testing. Moses normalisation and
# tokenisation (sacremoses), clean-corpus-n on training (empty lines, length ratio 1.5, at most 250 tokens), joint
# BPE (subword-nmt, 32k merges) or a sentencepiece model (--spm), fairseq-preprocess --joined-dictionary.
#   bash scripts/prepare-wmt16-en-de.sh --out DIR [--from DIR] [--bpe-ops N] [--spm] [--lower] [--force]
# --from DIR holds the official archives (training-parallel-europarl-v7.tgz, training-parallel-commoncrawl.tgz,
# training-parallel-nc-v11.tgz, dev.tgz, test.tgz) or their files unpacked (europarl-v7.de-en.en, …,
# newstest2014-deen-src.en.sgm or plain newstest2014.en, …); what is missing is downloaded (WMT16_MIRROR=URL
# fetches every archive from URL/NAME instead of the official addresses). Stages already complete are skipped;
# each writes NAME.tmp and renames it on success, with its options and inputs (NAME/stage.txt): a re-run with others
# stops naming them; --force remakes what differs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPE_OPS=32000
MIRROR="${WMT16_MIRROR:-}"
declare -A ARCHIVE_URL=(
  [training-parallel-europarl-v7.tgz]="https://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz"
  [training-parallel-commoncrawl.tgz]="https://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz"
  [training-parallel-nc-v11.tgz]="https://www.statmt.org/wmt16/translation-task/training-parallel-nc-v11.tgz"
  [dev.tgz]="https://www.statmt.org/wmt16/translation-task/dev.tgz"
  [test.tgz]="https://www.statmt.org/wmt16/translation-task/test.tgz"
)
# corpus stem (files STEM.en / STEM.de) → the archive it comes in
TRAIN=("europarl-v7.de-en:training-parallel-europarl-v7.tgz" "commoncrawl.de-en:training-parallel-commoncrawl.tgz"
       "news-commentary-v11.de-en:training-parallel-nc-v11.tgz")
# fairseq split : newstest year : archive
EVAL=("valid:2015:dev.tgz" "test:2014:dev.tgz" "test1:2016:test.tgz")

source "$ROOT/scripts/lib.sh"
parse_prepare_args 12 "$@"
mkdir -p "$OUT"

# find_file NAME: the first file called NAME under --from or the unpacked archives, or nothing.
find_file() {
  local d
  for d in ${FROM:+"$FROM"} "$OUT/downloads.tmp/unpacked"; do
    [[ -d "$d" ]] && find "$d" -name "$1" -type f -print -quit
  done | head -n 1
}
# unpack ARCHIVE: from --from if there, else downloaded; unpacked once under downloads.tmp/unpacked.
unpack() {
  local name="$1" dest="$OUT/downloads.tmp"
  [[ -f "$dest/$name.unpacked" ]] && return 0
  mkdir -p "$dest/unpacked"
  local file="${FROM:+$FROM/$name}"
  if [[ -z "$file" || ! -f "$file" ]]; then
    local url="${ARCHIVE_URL[$name]}"
    [[ -n "$MIRROR" ]] && url="$MIRROR/$name"
    log "download $url"
    curl -fsSL "$url" -o "$dest/$name" || die "download of $url failed (offline? put $name in --from DIR)"
    file="$dest/$name"
  fi
  tar -xzf "$file" -C "$dest/unpacked" || die "$file: not a readable .tgz archive"
  touch "$dest/$name.unpacked"
}
# plain_or_sgm YEAR LANG SIDE OUT: newstestYEAR in LANG from a plain file or the SGML of the archive.
plain_or_sgm() {
  local year="$1" lang="$2" side="$3" out="$4" f
  f=$(find_file "newstest$year.$lang")
  [[ -z "$f" ]] && f=$(find_file "newstest$year-ende-$side.$lang.sgm")
  [[ -z "$f" ]] && f=$(find_file "newstest$year-deen-$side.$lang.sgm")
  [[ -n "$f" ]] || return 1
  if [[ "$f" == *.sgm ]]; then
    "$PY" -c 'import re, sys
segs = [m.group(1).strip() for m in re.finditer(r"<seg[^>]*>(.*?)</seg>", open(sys.argv[1], encoding="utf-8").read())]
open(sys.argv[2], "w", encoding="utf-8").write("".join(s + "\n" for s in segs))' "$f" "$out" \
      || die "$f: cannot read the SGML segments"
  else
    cp "$f" "$out"
  fi
}

sources=(--option "mirror=${MIRROR:-official}"); [[ -n "$FROM" ]] && sources=(--option "from=given" --input "$FROM")
if stage "1/5 raw WMT16 corpora" "$OUT/raw" --option "src=$SRC" --option "tgt=$TGT" "${sources[@]}"; then
  : > "$OUT/raw.tmp/train.$SRC"; : > "$OUT/raw.tmp/train.$TGT"
  printf 'train\t' > "$OUT/raw.tmp/splits.tsv"
  for entry in "${TRAIN[@]}"; do
    stem="${entry%%:*}" archive="${entry##*:}"
    [[ -n "$(find_file "$stem.$SRC")" ]] || unpack "$archive"
    for l in "$SRC" "$TGT"; do
      [[ -n "$(find_file "$stem.$l")" ]] || die "$stem.$l: not in --from nor in $archive"
    done
    pipeline check-parallel "$(find_file "$stem.$SRC")" "$(find_file "$stem.$TGT")" >/dev/null
    for l in "$SRC" "$TGT"; do cat "$(find_file "$stem.$l")" >> "$OUT/raw.tmp/train.$l"; done
    printf '%s+' "$stem" >> "$OUT/raw.tmp/splits.tsv"
  done
  sed -i 's/+$/\n/' "$OUT/raw.tmp/splits.tsv"
  for entry in "${EVAL[@]}"; do
    IFS=: read -r split year archive <<< "$entry"
    plain_or_sgm "$year" "$SRC" src "$OUT/raw.tmp/$split.$SRC" 2>/dev/null || { unpack "$archive";
      plain_or_sgm "$year" "$SRC" src "$OUT/raw.tmp/$split.$SRC" || die "newstest$year.$SRC: not in --from nor in $archive"; }
    plain_or_sgm "$year" "$TGT" ref "$OUT/raw.tmp/$split.$TGT" || { unpack "$archive";
      plain_or_sgm "$year" "$TGT" ref "$OUT/raw.tmp/$split.$TGT" || die "newstest$year.$TGT: not in --from nor in $archive"; }
    pipeline check-parallel "$OUT/raw.tmp/$split.$SRC" "$OUT/raw.tmp/$split.$TGT" \
      --labels "newstest$year.$SRC" "newstest$year.$TGT" >/dev/null
    printf '%s\tnewstest%s\n' "$split" "$year" >> "$OUT/raw.tmp/splits.tsv"
  done
  rm -rf "$OUT/downloads.tmp"
  commit "$OUT/raw"
fi
SPLITS=(train valid test test1)

if stage "2/5 Moses tokenisation (sacremoses)" "$OUT/tok" --option "lower=$LOWER" --after "$OUT/raw"; then
  tokenize_corpus "$OUT/raw" "$OUT/tok.tmp" "$SRC" "$TGT" "${SPLITS[@]}"
  commit "$OUT/tok"
fi
if stage "3/5 clean training corpus (clean-corpus-n: 1-250 tokens, ratio 1.5)" "$OUT/clean" --after "$OUT/tok"; then
  kept=$(pipeline clean "$OUT/tok/train.$SRC" "$OUT/tok/train.$TGT" "$OUT/clean.tmp/train.$SRC" "$OUT/clean.tmp/train.$TGT" \
    --min 1 --max 250 --ratio 1.5)
  log "kept $kept of $(pipeline count "$OUT/tok/train.$SRC") training pairs"
  for split in valid test test1; do for l in "$SRC" "$TGT"; do cp "$OUT/tok/$split.$l" "$OUT/clean.tmp/"; done; done
  commit "$OUT/clean"
fi
if stage "4/5 joint ${SEGMENTATION}, $BPE_OPS" "$OUT/$SEGMENTATION" --option "segmentation=$SEGMENTATION" \
  --option "ops=$BPE_OPS" --option "lower=$LOWER" --after "$OUT/raw" --after "$OUT/clean"; then
  # BPE segments the cleaned Moses tokens; sentencepiece works on raw text, so with --spm the whole raw
  # training set is used (the cleaning stage applies to the Moses path only).
  segment_corpus "$OUT/clean" "$OUT/raw" "$OUT/$SEGMENTATION.tmp" "$SRC" "$TGT" "$BPE_OPS" "${SPLITS[@]}"
  commit "$OUT/$SEGMENTATION"
fi
binarize_prepared 5/5 test test1
