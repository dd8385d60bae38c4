#!/usr/bin/env bash
# Train vanilla_transformer_classifier on scripts/prepare-imdb.sh's output through the stock fairseq-train, with a preset
# (extra flags after -- are passed on and win), then report test accuracy with fairseq-validate --valid-subset test.
#   bash scripts/train-imdb.sh --preset cpu|trans-base|trans-1|trans-2|trans-3 --data PREPARED/bin --save DIR [-- FLAGS]
# cpu        : 2 layers, d_model 64, mean pooling, 400 tokens (head+tail), lr 1e-3, 5 epochs: ~15 min on 2 cores
# trans-base : the users' Trans-Base: N=6, h=8, d_model 512, 20 epochs, lr 2e-5, batch 16
# trans-1    : as trans-base with pretrained word vectors kept frozen (needs -- --encoder-embed-path FILE; d_model = their size)
# trans-2    : 10 epochs, dropout 0.3 on the encoder output; with data from prepare-imdb.sh --augment (doubled set)
# trans-3    : as trans-2, batch 8, lr warmed up linearly from 0 over the first 10% of updates to 2e-5
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET=""; DATA=""; SAVE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) PRESET="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --save) SAVE="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$SAVE" ]] || { echo "error: --data PREPARED/bin and --save DIR are required" >&2; exit 2; }
[[ -f "$DATA/input0/dict.txt" && -f "$DATA/label/dict.txt" ]] \
  || { echo "error: $DATA: no input0/dict.txt and label/dict.txt; run scripts/prepare-imdb.sh and pass its bin/" >&2; exit 2; }
source "$ROOT/scripts/lib.sh"

COMMON=(--task imdb_classification --criterion vanilla_label_smoothed_classification --label-smoothing 0.1
  --optimizer adam --adam-betas "(0.9, 0.98)" --seed 1 --log-format simple --log-interval 100
  --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric --no-epoch-checkpoints)
BASE=(--arch vanilla_transformer_classifier --encoder-layers 6 --encoder-attention-heads 8 --max-positions 512
  --truncation head_tail --pooling first --lr 2e-5 --lr-scheduler fixed)
case "$PRESET" in
  cpu) FLAGS=(--arch vanilla_transformer_classifier_tiny --encoder-embed-dim 64 --encoder-ffn-embed-dim 256
      --encoder-layers 2 --encoder-attention-heads 4 --pooling mean --dropout 0.1 --pooler-dropout 0.1
      --max-positions 400 --truncation head_tail --weight-decay 0.01 --lr 1e-3 --lr-scheduler inverse_sqrt
      --warmup-updates 300 --batch-size 32 --max-epoch 5 --num-workers 1) ;;
  trans-base) FLAGS=("${BASE[@]}" --batch-size 16 --max-epoch 20) ;;
  trans-1) FLAGS=("${BASE[@]}" --batch-size 16 --max-epoch 20 --freeze-embeddings) ;;
  trans-2) FLAGS=("${BASE[@]}" --batch-size 16 --max-epoch 10 --pooler-dropout 0.3) ;;
  trans-3)  # warm-up over 10 % of the updates: 10 epochs of ⌈reviews / 8⌉ batches
    n_train=$("$PY" -c 'import sys; from fairseq.data import data_utils, Dictionary
d = Dictionary.load(sys.argv[1] + "/input0/dict.txt"); print(len(data_utils.load_indexed_dataset(sys.argv[1] + "/input0/train", d)))' "$DATA")
    total=$(( (n_train + 7) / 8 * 10 ))
    FLAGS=("${BASE[@]}" --batch-size 8 --max-epoch 10 --pooler-dropout 0.3 --lr-scheduler polynomial_decay
      --warmup-updates $(( total / 10 )) --total-num-update "$total" --end-learning-rate 2e-5) ;;
  *) echo "error: --preset must be cpu, trans-base, trans-1, trans-2 or trans-3 (got '$PRESET')" >&2; exit 2 ;;
esac
if [[ "$PRESET" == trans-2 || "$PRESET" == trans-3 ]] && ! grep -q '^augment=1' "$DATA/pipeline.txt" 2>/dev/null; then
  log "note: $DATA was prepared without --augment; Trans-2/3 used the doubled set (prepare-imdb.sh --augment)"
fi

CMD=(fairseq-train "$DATA" --user-dir "$USER_DIR" "${COMMON[@]}" "${FLAGS[@]}" --save-dir "$SAVE" "$@")
mkdir -p "$SAVE"
log "fairseq-train, preset $PRESET → $SAVE (log: $SAVE/train.log, command: $SAVE/command.sh)"
save_command "$SAVE/command.sh" "${CMD[@]}"
t0=$SECONDS
"${CMD[@]}" 2>&1 | tee -a "$SAVE/train.log"
log "trained in $((SECONDS - t0)) s; test accuracy of checkpoint_best.pt (fairseq-validate --valid-subset test;
the task's truncation and --max-positions come from the checkpoint):"
fairseq-validate "$DATA" --user-dir "$USER_DIR" --task imdb_classification --path "$SAVE/checkpoint_best.pt" \
  --valid-subset test --batch-size 64 2>&1 | tee "$SAVE/test.log" | grep -E "valid on 'test'|error"
