#!/usr/bin/env bash
# Generation speed of the two demo checkpoints (bash scripts/run-demo.sh --baseline first), one run per setting.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for cfg in "5 128" "1 128" "5 1" "1 1"; do set -- $cfg
  for m in vanilla fairseq_transformer; do
    r=$(.venv/bin/fairseq-generate runs/demo/bin --user-dir fairseq_vanilla --path runs/demo/$m/checkpoints/checkpoint_best.pt --beam $1 --batch-size $2 --remove-bpe --cpu 2>&1 | grep -E "Translated|BLEU4" | tr '\n' ' ')
    echo "beam $1 batch $2 $m: $r"
  done
done
