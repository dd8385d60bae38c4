#!/usr/bin/env bash
# Train with a recipe preset through the stock fairseq-train (extra flags after -- are passed on and win).
#   bash scripts/train.sh --preset wu2021|wmt16-base|wmt16-big|demo --data BIN --save DIR [--arch ARCH]
#        [--precision auto|fp32|bf16] [--gpu-fp16|--gpu-bf16] [--gpu-memory GB] [--dry-run] [-- FLAGS]
# wu2021     : Multi30k, Wu et al. 2021's text-only Transformer (not Table 3's multi30k scale): 4+4 layers, d_model
#              128, d_ff 256, 4 heads, dropout 0.3, shared embeddings, Adam (0.9, 0.98), lr 0.005, inverse-sqrt warm-up
#              2000, max-tokens 4096, 8000 updates (departs from §5.3 on purpose: Wu et al.'s small-data schedule)
# wmt16-base : the paper's base model with §5.3's optimiser: Adam β (0.9, 0.98), ε 1e-9, --lr-scheduler noam with
#              warm-up 4000 (peak 512^-0.5 · 4000^-0.5 = 7.0e-4), ~25k target tokens an update (max-tokens 4096 ×
#              update-freq 6 on one GPU, or what --gpu-memory plans)
# wmt16-big  : the paper's big model: dropout 0.3, the same schedule at d_model 1024 (peak 4.9e-4),
#              max-tokens 3584 × update-freq 16
# demo       : the tiny model on the synthetic corpus (departs from §5.3 on purpose: inverse-sqrt, lr 1e-3, 1,200 updates)
# --gpu-memory GB asks scripts/fit-memory.py for the largest --max-tokens that fits and the --update-freq reaching
# ≈25k target tokens an update (vanilla_transformer* archs); --gpu-bf16 is fairseq's --bf16 (on a GPU, no TPU).
# --precision (default auto; fairseq_vanilla/experiments/precision.py checks it, decides and says why, one line): bf16
# (fairseq's --bf16) only where the CPU has native bf16 (avx512_bf16/amx_bf16) and committed Table 3 results show bf16
# training equal in quality to fp32, else fp32; on a GPU auto is fp32 (--gpu-fp16/--gpu-bf16 choose half precision).
# fp32/bf16 force it. --dry-run writes and prints SAVE/command.sh without training.
# --arch transformer trains fairseq's own Transformer with the same flags (for comparisons).
# --arch vanilla_transformer_align (data: DIR/bin-align of scripts/prepare-alignments.sh) trains with the
# alignment criterion and --load-alignments (Garg et al. 2019; see examples/alignment/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET=""; DATA=""; SAVE=""; ARCH=""; PRECISION=(); GPU_MEMORY=""; CHOOSE=auto; DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) PRESET="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --save) SAVE="$2"; shift 2 ;;
    --arch) ARCH="$2"; shift 2 ;;
    --gpu-fp16) PRECISION=(--fp16); shift ;;
    --gpu-bf16) PRECISION=(--bf16); shift ;;
    --gpu-memory) GPU_MEMORY="$2"; shift 2 ;;
    --precision) CHOOSE="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$SAVE" ]] || { echo "error: --data BIN and --save DIR are required" >&2; exit 2; }
[[ -f "$DATA/dict.en.txt" || -n "$(ls "$DATA"/dict.*.txt 2>/dev/null)" ]] || { echo "error: $DATA: no fairseq dictionary (dict.*.txt) there; run a prepare script first" >&2; exit 2; }
[[ "$CHOOSE" == auto || ${#PRECISION[@]} -eq 0 ]] || { echo "error: --precision: give it or --gpu-fp16/--gpu-bf16, not both" >&2; exit 2; }
source "$ROOT/scripts/lib.sh"
if [[ ${#PRECISION[@]} -eq 0 ]]; then  # --gpu-fp16/--gpu-bf16 not given: --precision decides
  ON_GPU=()
  if [[ " $* " != *" --cpu "* ]] && command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
    ON_GPU=(--gpu)
  fi
  CHOSEN=$("$PY" -m fairseq_vanilla.experiments.precision train --precision "$CHOOSE" "${ON_GPU[@]}") || exit 2
  read -r -a PRECISION <<< "$CHOSEN"  # --bf16 or nothing
fi

COMMON=(--share-all-embeddings --optimizer adam --adam-betas "(0.9, 0.98)" --clip-norm 0.0 --label-smoothing 0.1 --seed 1
  --log-format simple --log-interval 100)
INVERSE_SQRT=(--lr-scheduler inverse_sqrt --warmup-init-lr 1e-07)
PAPER_SCHEDULE=(--adam-eps 1e-09 --lr-scheduler noam --lr 1 --warmup-updates 4000)  # §5.3: lrate = d^-0.5 · min(…)
case "$PRESET" in
  wu2021)
    ARCH="${ARCH:-vanilla_transformer}"
    FLAGS=(--encoder-layers 4 --decoder-layers 4 --encoder-embed-dim 128 --decoder-embed-dim 128
      --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 --encoder-attention-heads 4 --decoder-attention-heads 4
      --dropout 0.3 "${INVERSE_SQRT[@]}" --lr 0.005 --warmup-updates 2000 --max-tokens 4096 --max-update 8000
      --keep-last-epochs 10) ;;
  wmt16-base)
    ARCH="${ARCH:-vanilla_transformer}"
    FLAGS=(--dropout 0.1 "${PAPER_SCHEDULE[@]}" --max-tokens 4096 --update-freq 6
      --max-update 100000 --save-interval-updates 2000 --keep-interval-updates 10 --no-epoch-checkpoints) ;;
  wmt16-big)
    ARCH="${ARCH:-vanilla_transformer_big}"
    FLAGS=(--dropout 0.3 "${PAPER_SCHEDULE[@]}" --max-tokens 3584 --update-freq 16 --max-update 300000
      --save-interval-updates 2000 --keep-interval-updates 20 --no-epoch-checkpoints) ;;
  demo)
    ARCH="${ARCH:-vanilla_transformer_tiny}"
    FLAGS=(--dropout 0.1 "${INVERSE_SQRT[@]}" --lr 0.001 --warmup-updates 400 --max-tokens 4096 --max-update 1200
      --no-epoch-checkpoints) ;;
  *) echo "error: --preset must be wu2021, wmt16-base, wmt16-big or demo (got '$PRESET')" >&2; exit 2 ;;
esac
if [[ -n "$GPU_MEMORY" ]]; then
  [[ "$GPU_MEMORY" =~ ^[0-9.]+$ ]] && GPU_MEMORY="${GPU_MEMORY}GB"
  log "planning --max-tokens/--update-freq for $GPU_MEMORY ($ARCH ${PRECISION[*]:-fp32}, scripts/fit-memory.py)"
  PLAN=$("$PY" "$ROOT/scripts/fit-memory.py" --arch "$ARCH" --memory "$GPU_MEMORY" --data "$DATA" "${PRECISION[@]}" \
    --flags-only 2>/dev/null) || die "--gpu-memory $GPU_MEMORY: see python scripts/fit-memory.py --arch $ARCH --memory $GPU_MEMORY --data $DATA ${PRECISION[*]}"
  read -r -a PLAN_FLAGS <<< "$PLAN"
  FLAGS+=("${PLAN_FLAGS[@]}")  # later flags win: these replace the preset's batch
fi
TASK_FLAGS=()
case "$ARCH" in
  transformer_align*) CRITERION=label_smoothed_cross_entropy_with_alignment; TASK_FLAGS=(--load-alignments) ;;
  transformer*) CRITERION=label_smoothed_cross_entropy ;;
  vanilla_transformer_align*)
    CRITERION=vanilla_label_smoothed_cross_entropy_with_alignment; TASK_FLAGS=(--load-alignments)
    [[ -n "$(ls "$DATA"/train.align.*.idx 2>/dev/null)" ]] \
      || die "$DATA: no train.align.* (the alignment model needs the output of scripts/prepare-alignments.sh: DIR/bin-align)" ;;
  *) CRITERION=vanilla_label_smoothed_cross_entropy ;;
esac

CMD=(fairseq-train "$DATA" --user-dir "$USER_DIR" --arch "$ARCH" --criterion "$CRITERION" "${TASK_FLAGS[@]}"
  "${COMMON[@]}" "${FLAGS[@]}" "${PRECISION[@]}" --save-dir "$SAVE" "$@")
# SAVE: new, empty, or an earlier run to resume; never a file, a prepared corpus, a folder with files training does
# not write, or a run whose checkpoint_last.pt is an average (fairseq_vanilla/text/output_dirs.py: check_train_save)
pipeline check-train-save "$SAVE" || exit 2
mkdir -p "$SAVE"
log "fairseq-train $ARCH, preset $PRESET → $SAVE (log: $SAVE/train.log, command: $SAVE/command.sh)"
save_command "$SAVE/command.sh" "${CMD[@]}"
cat "$SAVE/command.sh"
[[ "$DRY_RUN" == 1 ]] && exit 0
"${CMD[@]}" 2>&1 | tee -a "$SAVE/train.log"
