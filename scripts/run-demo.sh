#!/usr/bin/env bash
# The main job: the whole English→German pipeline, offline, on the built-in synthetic corpus, with the stock
# fairseq binaries and the vanilla Transformer. Re-running skips finished stages.
#   bash scripts/run-demo.sh [--out DIR] [--arch ARCH] [--max-update N] [--train-pairs N] [--test-pairs N] [--baseline]
#   --baseline also trains fairseq's own `transformer` with the same flags and reports both. The output folder works
#   with every tool of the README (load_translator, fairseq-interactive, plot-attention.py, report.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/runs/demo"
ARCH="vanilla_transformer_tiny"
MAX_UPDATE=1200
BPE_OPS=1000
TRAIN_PAIRS=12000
TEST_PAIRS=500
VALID_PAIRS=500
BASELINE=0
SRC=en
TGT=de

while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$(realpath -m "$2")"; shift 2 ;;
    --arch) ARCH="$2"; shift 2 ;;
    --max-update) MAX_UPDATE="$2"; shift 2 ;;
    --train-pairs) TRAIN_PAIRS="$2"; shift 2 ;;
    --test-pairs) TEST_PAIRS="$2"; VALID_PAIRS="$2"; shift 2 ;;
    --baseline) BASELINE=1; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash "$ROOT/scripts/setup.sh"
source "$ROOT/scripts/lib.sh"
mkdir -p "$OUT"

# vanilla_transformer_tiny's sizes, written out for fairseq's own `transformer` (--baseline) so that both
# models get the same ones; tests/test_model.py checks that the preset equals them.
BASELINE_SIZE_FLAGS=(--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128
  --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4)
TRAIN_FLAGS=(--share-all-embeddings --dropout 0.1
  --optimizer adam --adam-betas "(0.9, 0.98)" --clip-norm 0.0 --lr 0.001 --lr-scheduler inverse_sqrt
  --warmup-updates 400 --warmup-init-lr 1e-07 --label-smoothing 0.1 --max-tokens 4096 --max-update "$MAX_UPDATE"
  --seed 1 --no-epoch-checkpoints --log-format simple --log-interval 100 --num-workers 0)

if stage "1/7 synthetic corpus" "$OUT/raw"; then
  pipeline synthetic --out "$OUT/raw.tmp" --train "$TRAIN_PAIRS" --valid "$VALID_PAIRS" --test "$TEST_PAIRS"
  commit "$OUT/raw"
fi
if stage "2/7 Moses tokenisation (sacremoses)" "$OUT/tok"; then
  tokenize_corpus "$OUT/raw" "$OUT/tok.tmp" "$SRC" "$TGT" train valid test
  commit "$OUT/tok"
fi
if stage "3/7 joint BPE, $BPE_OPS merges (subword-nmt)" "$OUT/bpe"; then
  learn_apply_bpe "$OUT/tok" "$OUT/bpe.tmp" "$SRC" "$TGT" "$BPE_OPS" train valid test
  commit "$OUT/bpe"
fi
if stage "4/7 binarise (fairseq-preprocess --joined-dictionary)" "$OUT/bin"; then
  binarize "$OUT/bpe" "$OUT/bin.tmp" "$SRC" "$TGT" test
  commit "$OUT/bin"
fi
if [[ ! -f "$OUT/bin/pipeline.txt" ]]; then  # what load_translator, plot-attention.py and generate.sh read back
  echo "== 4/7 describe the preprocessing (bin/pipeline.txt, bin/splits.tsv)"
  printf 'train\ttrain\nvalid\tvalid\ntest\ttest\n' > "$OUT/bin/splits.tsv"
  printf 'segmentation=bpe\nlower=0\nops=%s\nsrc=%s\ntgt=%s\n' "$BPE_OPS" "$SRC" "$TGT" > "$OUT/bin/pipeline.txt.tmp"
  mv "$OUT/bin/pipeline.txt.tmp" "$OUT/bin/pipeline.txt"
fi

# train_and_score NAME ARCH CRITERION [extra fairseq-train flags]: stages 5-7 for one model.
train_and_score() {
  local name="$1" arch="$2" criterion="$3"; shift 3
  local ckpt="$OUT/$name/checkpoints" gen="$OUT/$name/test"
  mkdir -p "$OUT/$name"
  if stage "5/7 train $arch, $MAX_UPDATE updates (fairseq-train)" "$ckpt"; then
    local t0=$SECONDS
    save_command "$OUT/$name/command.sh" fairseq-train "$OUT/bin" --user-dir "$USER_DIR" --arch "$arch" "$@" \
      "${TRAIN_FLAGS[@]}" --criterion "$criterion" --save-dir "$ckpt"
    fairseq-train "$OUT/bin" --user-dir "$USER_DIR" --arch "$arch" "$@" "${TRAIN_FLAGS[@]}" \
      --criterion "$criterion" --save-dir "$ckpt.tmp" 2>&1 | tee "$OUT/$name/train.log" \
      | grep --line-buffered -E "\| (train_inner|valid|train) \||done training" || true
    [[ -f "$ckpt.tmp/checkpoint_best.pt" ]] || die "training failed (log: $OUT/$name/train.log)"
    echo "$((SECONDS - t0))" > "$ckpt.tmp/train_seconds"
    commit "$ckpt"
  fi
  if stage "6/7 beam search, detokenise, 7/7 BLEU ($name)" "$gen"; then
    translate_and_score "$OUT/bin" "$ckpt/checkpoint_best.pt" test "$OUT/raw/test.$TGT" "$TGT" "$gen.tmp" \
      --beam 5 --batch-size 128
    commit "$gen"
  fi
}

train_and_score vanilla "$ARCH" vanilla_label_smoothed_cross_entropy
if [[ "$BASELINE" == 1 ]]; then
  train_and_score fairseq_transformer transformer label_smoothed_cross_entropy "${BASELINE_SIZE_FLAGS[@]}"
fi

echo
echo "== results on the synthetic test set ($TEST_PAIRS sentences) =="
for name in vanilla fairseq_transformer; do
  [[ -f "$OUT/$name/test/bleu.txt" ]] || continue
  echo "-- $name (trained in $(cat "$OUT/$name/checkpoints/train_seconds") s)"
  cat "$OUT/$name/test/bleu.txt"
done
echo "outputs: $OUT (translations: $OUT/vanilla/test/hyp.txt, checkpoints: $OUT/vanilla/checkpoints)"
CKPT="$OUT/vanilla/checkpoints/checkpoint_best.pt"
echo
echo "== translate your own sentence with the model just trained =="
echo "echo 'The young horse sees the king .' | fairseq-interactive $OUT/bin --user-dir $USER_DIR --path $CKPT -s $SRC -t $TGT --tokenizer vanilla_moses --bpe subword_nmt --bpe-codes $OUT/bpe/codes --beam 5 | grep ^D-"
echo "in Python: from fairseq_vanilla.inference.hub import load_translator; load_translator('$CKPT', '$OUT').translate('The young horse sees the king .')"
echo "report: $PY $ROOT/scripts/report.py --save $OUT/vanilla --generate $OUT/vanilla/test"
echo "attention: $PY $ROOT/scripts/plot-attention.py --path $CKPT --data $OUT --sentence 'The young horse sees the king .' --out $OUT/attention"
