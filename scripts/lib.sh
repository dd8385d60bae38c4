# Shared shell functions of the pipeline scripts; sourced, not run. Needs: ROOT set to the repository root.
# Stages write into "NAME.tmp" and rename to NAME on success: a folder that exists is complete.

# The project's .venv when there is one (scripts/setup.sh), else the python3 and fairseq binaries on PATH
# (a GPU machine with its own torch: see README.md).
if [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
  export PATH="$ROOT/.venv/bin:$PATH"
else
  PY="$(command -v python3)"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
USER_DIR="$ROOT/fairseq_vanilla"

log() { echo "[$(date +%H:%M:%S)] $*"; }
# save_command FILE CMD...: the exact command, shell-quoted on one line (read back by scripts/report.py).
save_command() { local file="$1"; shift; printf '%q ' "$@" | sed 's/ $/\n/' > "$file"; }
die() { echo "error: $*" >&2; exit 1; }
pipeline() { "$PY" -m fairseq_vanilla "$@"; }  # the package's command line (fairseq_vanilla/__main__.py)

# parse_prepare_args HELP_LINES "$@": the options every prepare script takes. Reads BPE_OPS (the default) and sets
# OUT, FROM, BPE_OPS, SEGMENTATION, LOWER, FORCE, SRC, TGT; prints lines 2..HELP_LINES of the script for --help.
# FROM_MAY_BE_FILE=1 lets --from name a file (an archive) as well as a folder.
parse_prepare_args() {
  local help_lines="$1"; shift
  OUT=""; FROM=""; SEGMENTATION=bpe; LOWER=0; FORCE=0; SRC="${SRC:-en}"; TGT="${TGT:-de}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --out) OUT="$(realpath -m "$2")"; shift 2 ;;
      --from) FROM="$(realpath -m "$2")"; shift 2 ;;
      --bpe-ops) BPE_OPS="$2"; shift 2 ;;
      --spm) SEGMENTATION=spm; shift ;;
      --lower) LOWER=1; shift ;;
      --force) FORCE=1; shift ;;
      --src) SRC="$2"; shift 2 ;;
      --tgt) TGT="$2"; shift 2 ;;
      -h|--help) sed -n "2,${help_lines}p" "$0"; exit 0 ;;
      *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  [[ -n "$OUT" ]] || { echo "error: --out DIR is required" >&2; exit 2; }
  [[ "$BPE_OPS" =~ ^[1-9][0-9]*$ ]] || { echo "error: --bpe-ops must be a positive integer, got '$BPE_OPS'" >&2; exit 2; }
  if [[ "${FROM_MAY_BE_FILE:-0}" == 1 ]]; then
    [[ -z "$FROM" || -e "$FROM" ]] || { echo "error: --from $FROM: no such file or folder" >&2; exit 2; }
  else
    [[ -z "$FROM" || -d "$FROM" ]] || { echo "error: --from $FROM: no such folder" >&2; exit 2; }
  fi
  export SEGMENTATION LOWER
}

# stage NAME DIR [--option KEY=VALUE] [--input FILE_OR_DIR] [--after EARLIER_STAGE_DIR]...: returns 1 (skip) if DIR
# was made with these options from these inputs (DIR/stage.txt: fairseq_vanilla/text/provenance.py), else prepares
# DIR.tmp with the new record and returns 0. A DIR made otherwise stops the script with a line naming what differs,
# unless --force (FORCE=1) asks for it to be made again. LEGACY_SETTINGS (default OUT/bin/pipeline.txt) is what a
# stage made before records were kept is checked against.
stage() {
  local name="$1" dir="$2" verdict force=(); shift 2
  [[ "${FORCE:-0}" == 1 ]] && force=(--force)
  verdict=$(pipeline stage "$dir" "$@" "${force[@]}" --legacy-settings "${LEGACY_SETTINGS:-${OUT:-.}/bin/pipeline.txt}") \
    || exit 1
  if [[ "$verdict" == skip ]]; then
    log "$name: done already ($dir)"
    return 1
  fi
  log "$name → $dir"
}
# warn_long_lines MAX FILE...: count and name the lines longer than MAX tokens (they are kept; fairseq-train refuses
# them unless --skip-invalid-size-inputs-valid-test, or the task truncates them).
warn_long_lines() {
  local max="$1" warnings; shift
  warnings=$(pipeline count-long --max-tokens "$max" "$@" --why "${LONG_LINES_WHY:-}")
  [[ -z "$warnings" ]] || echo "$warnings" >&2
}
# commit DIR: the stage's DIR.tmp becomes DIR.
commit() { mv "$1.tmp" "$1"; }

# tokenize_corpus IN_DIR OUT_DIR SRC TGT SPLIT...: check each split's pair, Moses-tokenise both sides (lower-cased if LOWER=1).
tokenize_corpus() {
  local in="$1" out="$2" src="$3" tgt="$4"; shift 4
  local lower=()
  [[ "${LOWER:-0}" == 1 ]] && lower=(--lower)
  for split in "$@"; do
    pipeline check-parallel "$in/$split.$src" "$in/$split.$tgt" >/dev/null
    for l in "$src" "$tgt"; do
      pipeline tokenize --lang "$l" "${lower[@]}" "$in/$split.$l" "$out/$split.$l"
    done
  done
}

# learn_apply_bpe TOK_DIR OUT_DIR SRC TGT OPS SPLIT...: joint BPE (subword-nmt) learned on train, applied to all.
learn_apply_bpe() {
  local tok="$1" out="$2" src="$3" tgt="$4" ops="$5"; shift 5
  subword-nmt learn-joint-bpe-and-vocab --input "$tok/train.$src" "$tok/train.$tgt" -s "$ops" \
    -o "$out/codes" --write-vocabulary "$out/vocab.$src" "$out/vocab.$tgt"
  for split in "$@"; do
    for l in "$src" "$tgt"; do
      subword-nmt apply-bpe -c "$out/codes" --vocabulary "$out/vocab.$l" --vocabulary-threshold 1 \
        < "$tok/$split.$l" > "$out/$split.$l"
    done
  done
}

# binarize BPE_DIR BIN_DIR SRC TGT TEST_SPLIT...: fairseq-preprocess with a joined dictionary (train, valid, tests).
binarize() {
  local bpe="$1" bin="$2" src="$3" tgt="$4"; shift 4
  local tests
  tests=$(printf "$bpe/%s," "$@"); tests="${tests%,}"
  fairseq-preprocess --source-lang "$src" --target-lang "$tgt" --joined-dictionary \
    --trainpref "$bpe/train" --validpref "$bpe/valid" --testpref "$tests" \
    --destdir "$bin" --workers "${WORKERS:-2}" > "$bin/preprocess.log" 2>&1 \
    || { tail -n 20 "$bin/preprocess.log" >&2; die "fairseq-preprocess failed (log: $bin/preprocess.log)"; }
}

# binarize_prepared LABEL TEST_SPLIT...: the prepare scripts' last stage, $OUT/$SEGMENTATION → $OUT/bin, with
# bin/splits.tsv (fairseq split → source file, from raw/) and bin/pipeline.txt (what scripts/generate.sh reads back:
# segmentation, lower, ops, src, tgt).
binarize_prepared() {
  local label="$1"; shift
  if stage "$label binarise (fairseq-preprocess --joined-dictionary)" "$OUT/bin" --option "segmentation=$SEGMENTATION" \
    --option "ops=$BPE_OPS" --option "lower=$LOWER" --option "src=$SRC" --option "tgt=$TGT" \
    --after "$OUT/$SEGMENTATION"; then
    binarize "$OUT/$SEGMENTATION" "$OUT/bin.tmp" "$SRC" "$TGT" "$@"
    cp "$OUT/raw/splits.tsv" "$OUT/bin.tmp/splits.tsv"
    printf 'segmentation=%s\nlower=%s\nops=%s\nsrc=%s\ntgt=%s\n' "$SEGMENTATION" "$LOWER" "$BPE_OPS" "$SRC" "$TGT" \
      > "$OUT/bin.tmp/pipeline.txt"
    commit "$OUT/bin"
  fi
  log "ready: $OUT/bin ($(cut -f1 "$OUT/bin/splits.tsv" | tr '\n' ' '))"
}

# segment_corpus TOK_DIR RAW_DIR OUT_DIR SRC TGT OPS SPLIT...: joint subword units learned on train, applied to all
# splits. SEGMENTATION=bpe (default): subword-nmt BPE with OPS merges on the Moses-tokenised text;
# SEGMENTATION=spm: a sentencepiece model of OPS pieces on the raw (lower-cased if LOWER=1) text.
segment_corpus() {
  local tok="$1" raw="$2" out="$3" src="$4" tgt="$5" ops="$6"; shift 6
  if [[ "${SEGMENTATION:-bpe}" == spm ]]; then
    local text="$raw"
    if [[ "${LOWER:-0}" == 1 ]]; then
      text="$out/lower"; mkdir -p "$text"
      for split in "$@"; do for l in "$src" "$tgt"; do
        "$PY" -c 'import sys; open(sys.argv[2], "w", encoding="utf-8").write(open(sys.argv[1], encoding="utf-8").read().lower())' \
          "$raw/$split.$l" "$text/$split.$l"
      done; done
    fi
    pipeline spm-train --model-prefix "$out/spm" --vocab-size "$ops" "$text/train.$src" "$text/train.$tgt"
    for split in "$@"; do for l in "$src" "$tgt"; do
      pipeline spm-encode --model "$out/spm.model" "$text/$split.$l" "$out/$split.$l"
    done; done
  else
    learn_apply_bpe "$tok" "$out" "$src" "$tgt" "$ops" "$@"
  fi
}

# translate_and_score BIN CKPT SPLIT REF_RAW TGT OUT_DIR [generate flags...]
# Writes gen.out, hyp.txt (detokenised), hyp.tok (Moses-tokenised), *.cs (compound-split), bleu.txt; checks one hypothesis per source.
# SEGMENTATION and LOWER as for segment_corpus (LOWER=1 scores against the lower-cased reference).
translate_and_score() {
  local bin="$1" ckpt="$2" split="$3" ref_raw="$4" tgt="$5" out="$6"; shift 6
  local n remove=subword_nmt lc=() lower=()
  [[ "${SEGMENTATION:-bpe}" == spm ]] && remove=sentencepiece
  [[ "${LOWER:-0}" == 1 ]] && { lc=(-lc); lower=(--lower); }
  n=$(pipeline count "$ref_raw")
  fairseq-generate "$bin" --user-dir "$USER_DIR" --path "$ckpt" --gen-subset "$split" \
    --remove-bpe "$remove" "$@" > "$out/gen.out" 2> "$out/generate.log" \
    || { tail -n 20 "$out/generate.log" >&2; die "fairseq-generate failed (log: $out/generate.log)"; }
  if [[ "$remove" == sentencepiece ]]; then
    pipeline extract-hyps "$out/gen.out" "$out/hyp.txt" --expect "$n"
    pipeline tokenize --lang "$tgt" "${lower[@]}" "$out/hyp.txt" "$out/hyp.tok"
  else
    pipeline extract-hyps "$out/gen.out" "$out/hyp.tok" --expect "$n"
    pipeline detokenize --lang "$tgt" "$out/hyp.tok" "$out/hyp.txt"
  fi
  pipeline tokenize --lang "$tgt" "${lower[@]}" "$ref_raw" "$out/ref.tok"
  pipeline compound-split "$out/hyp.tok" "$out/hyp.tok.cs"
  pipeline compound-split "$out/ref.tok" "$out/ref.tok.cs"
  {
    echo "sacreBLEU, detokenised: $(sacrebleu "$ref_raw" -i "$out/hyp.txt" -m bleu -w 2 "${lc[@]}" --format text)"
    echo "fairseq-score, tokenised: $(fairseq-score --sys "$out/hyp.tok" --ref "$out/ref.tok" 2>/dev/null | grep -o 'BLEU4 = .*')"
    echo "fairseq-score, tokenised, lower-cased: $(fairseq-score --ignore-case --sys "$out/hyp.tok" --ref "$out/ref.tok" 2>/dev/null | grep -o 'BLEU4 = .*')"
    echo "fairseq-score, tokenised, compound-split (as the paper's WMT14 numbers): $(fairseq-score --sys "$out/hyp.tok.cs" --ref "$out/ref.tok.cs" 2>/dev/null | grep -o 'BLEU4 = .*')"
    echo "hypotheses: $n of $n source sentences"
  } > "$out/bleu.txt"
}

# Labelled text for classification (prepare-imdb.sh, prepare-classification.sh): OUT/raw/{train,valid,test}.{txt,label}
# → tok/ → bpe/ or spm/ → bin/input0/ and bin/label/ (fairseq-preprocess --only-source: sentence-classification layout).
# tokenize_labelled STEP: Moses tokens of raw/*.txt in tok/ (lower-cased if LOWER=1), the labels beside them.
tokenize_labelled() {
  local split lower=()
  stage "$1 Moses tokenisation (sacremoses)" "$OUT/tok" --option "lower=$LOWER" --after "$OUT/raw" || return 0
  [[ "$LOWER" == 1 ]] && lower=(--lower)
  for split in train valid test; do
    pipeline tokenize --lang en "${lower[@]}" "$OUT/raw/$split.txt" "$OUT/tok.tmp/$split.txt" &
  done
  wait -n && wait -n && wait -n || die "tokenisation failed"
  for split in train valid test; do cp "$OUT/raw/$split.label" "$OUT/tok.tmp/$split.label"; done
  commit "$OUT/tok"
}
# segment_labelled STEP TEXT_DIR [KEY=VALUE]...: subword-nmt BPE of BPE_OPS merges (or a sentencepiece model of BPE_OPS
# pieces) learned on TEXT_DIR/train.txt, applied to each split, into OUT/SEGMENTATION; KEY=VALUE: more stage options.
# SPM_TEXT=raw: sentencepiece reads OUT/raw (lower-cased if LOWER=1), the text the classifier hub segments, instead.
segment_labelled() {
  local step="$1" text="$2" split seg="$OUT/$SEGMENTATION.tmp" options=(); shift 2
  for kv in "$@"; do options+=(--option "$kv"); done
  stage "$step $SEGMENTATION, $BPE_OPS" "$OUT/$SEGMENTATION" --option "segmentation=$SEGMENTATION" \
    --option "ops=$BPE_OPS" "${options[@]}" --after "$text" || return 0
  if [[ "$SEGMENTATION" == spm && "${SPM_TEXT:-}" == raw ]]; then
    text="$seg/raw"; mkdir -p "$text"
    for split in train valid test; do
      "$PY" -c 'import sys; t = open(sys.argv[1], encoding="utf-8").read(); open(sys.argv[2], "w", encoding="utf-8").write(
        t.lower() if sys.argv[3] == "1" else t)' "$OUT/raw/$split.txt" "$text/$split.txt" "$LOWER"
      cp "$OUT/raw/$split.label" "$text/$split.label"
    done
  fi
  if [[ "$SEGMENTATION" == spm ]]; then
    pipeline spm-train --model-prefix "$seg/spm" --vocab-size "$BPE_OPS" "$text/train.txt"
    for split in train valid test; do pipeline spm-encode --model "$seg/spm.model" "$text/$split.txt" "$seg/$split.txt"; done
  else
    subword-nmt learn-bpe -s "$BPE_OPS" < "$text/train.txt" > "$seg/codes"
    for split in train valid test; do
      subword-nmt apply-bpe -c "$seg/codes" < "$text/$split.txt" > "$seg/$split.txt" &
    done
    wait -n && wait -n && wait -n || die "apply-bpe failed"
  fi
  for split in train valid test; do cp "$text/$split.label" "$seg/$split.label"; done
  commit "$OUT/$SEGMENTATION"
}
# binarize_labelled STEP [KEY=VALUE]...: OUT/SEGMENTATION → bin/input0 (texts; those over 510 tokens counted) and
# bin/label (no madeupword padding), bin/splits.tsv, bin/pipeline.txt (segmentation, lower, ops, KEY=VALUEs: for the hub).
binarize_labelled() {
  local step="$1" seg="$OUT/$SEGMENTATION" options=() part name ext factor; shift
  for kv in "$@"; do options+=(--option "$kv"); done
  LONG_LINES_WHY="; the classifier truncates them (the task's --max-positions, --truncation)" \
    warn_long_lines 510 "$seg"/{train,valid,test}.txt
  stage "$step binarise (fairseq-preprocess --only-source: input0/ and label/)" "$OUT/bin" \
    --option "segmentation=$SEGMENTATION" --option "ops=$BPE_OPS" --option "lower=$LOWER" "${options[@]}" \
    --after "$seg" || return 0
  for part in input0:txt:8 label:label:1; do
    IFS=: read -r name ext factor <<< "$part"
    fairseq-preprocess --only-source --padding-factor "$factor" --trainpref "$seg/train.$ext" --validpref "$seg/valid.$ext" \
      --testpref "$seg/test.$ext" --destdir "$OUT/bin.tmp/$name" --workers "${WORKERS:-2}" \
      > "$OUT/bin.tmp/$name.preprocess.log" 2>&1 \
      || { tail -n 20 "$OUT/bin.tmp/$name.preprocess.log" >&2; die "fairseq-preprocess failed for $name"; }
  done
  cp "$OUT/raw/splits.tsv" "$OUT/bin.tmp/splits.tsv"
  printf 'segmentation=%s\nlower=%s\nops=%s\n' "$SEGMENTATION" "$LOWER" "$BPE_OPS" > "$OUT/bin.tmp/pipeline.txt"
  if (($#)); then printf '%s\n' "$@" >> "$OUT/bin.tmp/pipeline.txt"; fi
  commit "$OUT/bin"
}
