# Shared shell functions of the pipeline scripts; sourced, not run. Needs: ROOT set to the repository root.
# Stages write into "NAME.tmp" and rename to NAME on success: a folder that exists is complete.

VENV_BIN="$ROOT/.venv/bin"
PY="$VENV_BIN/python"
export PATH="$VENV_BIN:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
USER_DIR="$ROOT/fairseq_vanilla"

log() { echo "[$(date +%H:%M:%S)] $*"; }
die() { echo "error: $*" >&2; exit 1; }
pipeline() { "$PY" -m fairseq_vanilla.pipeline "$@"; }

# stage NAME DIR: returns 1 (skip) if DIR is complete, else prepares DIR.tmp and returns 0.
stage() {
  local name="$1" dir="$2"
  if [[ -d "$dir" ]]; then
    log "$name: done already ($dir)"
    return 1
  fi
  log "$name → $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
}
# commit DIR: the stage's DIR.tmp becomes DIR.
commit() { mv "$1.tmp" "$1"; }

# tokenize_corpus IN_DIR OUT_DIR SRC TGT SPLIT... [-- --lower]: check each split's pair, Moses-tokenise both sides.
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

# translate_and_score BIN CKPT SPLIT REF_RAW REF_TOK TGT OUT_DIR [generate flags...]
# Writes gen.out, hyp.tok (tokenised), hyp.txt (detokenised), bleu.txt; checks one hypothesis per source.
translate_and_score() {
  local bin="$1" ckpt="$2" split="$3" ref_raw="$4" ref_tok="$5" tgt="$6" out="$7"; shift 7
  local n
  n=$(pipeline count "$ref_raw")
  fairseq-generate "$bin" --user-dir "$USER_DIR" --path "$ckpt" --gen-subset "$split" \
    --remove-bpe "$@" > "$out/gen.out" 2> "$out/generate.log" \
    || { tail -n 20 "$out/generate.log" >&2; die "fairseq-generate failed (log: $out/generate.log)"; }
  pipeline extract-hyps "$out/gen.out" "$out/hyp.tok" --expect "$n"
  pipeline detokenize --lang "$tgt" "$out/hyp.tok" "$out/hyp.txt"
  {
    echo "sacreBLEU, detokenised: $(sacrebleu "$ref_raw" -i "$out/hyp.txt" -m bleu -w 2 --format text)"
    echo "fairseq-score, tokenised:  $(fairseq-score --sys "$out/hyp.tok" --ref "$ref_tok" 2>/dev/null | grep -o 'BLEU4 = .*')"
    echo "hypotheses: $n of $n source sentences"
  } > "$out/bleu.txt"
}
