#!/usr/bin/env python3
"""Where does a translation model's cross-attention align? AER of every decoder layer against the prepared folder's
reference links (scripts/prepare-alignments.sh), on the reference translations (teacher-forced, as
``fairseq-generate --score-reference --print-alignment``): heads averaged, and for an alignment-supervised model
(``vanilla_transformer_align``) its supervised head(s) alone as well.

  python scripts/alignment-by-layer.py --path runs/table3/align/seed2/checkpoints/checkpoint_last.pt \\
      --data runs/multi30k --work runs/table3/align/seed2/by-layer [--split valid] [--json OUT.json]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", required=True, help="checkpoint (.pt) of a translation model")
    p.add_argument("--data", required=True, help="--out folder of the prepare script (bin/, align/)")
    p.add_argument("--work", required=True, help="folder for the fairseq-generate outputs (reused when present)")
    p.add_argument("--split", default="valid")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--json", help="write the table as JSON here too (new, or this command's earlier JSON)")
    p.add_argument("--force", action="store_true", help="replace --json even if it is not this command's output")
    a = p.parse_args(argv)
    reference = os.path.join(a.data, "align", f"{a.split}.align")
    for path, what in ((a.path, "--path"), (reference, "--data")):
        if not os.path.isfile(path):
            print(f"error: {what}: {path}: no such file", file=sys.stderr)
            return 2
    from fairseq_vanilla.text.io import PipelineError
    from fairseq_vanilla.text.outputs import claim_output, json_with_keys, output_file

    claim = dict(is_own=json_with_keys(("aer_by_layer",)), force=a.force, flag="--json", reads=(a.path, reference))
    if a.json:
        try:
            claim_output(a.json, **claim)
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    from fairseq import checkpoint_utils

    from fairseq_vanilla import register
    from fairseq_vanilla.experiments.table.evaluation import alignment_by_layer

    register()  # the safe checkpoint loader
    model = checkpoint_utils.load_checkpoint_to_cpu(a.path)["cfg"]["model"]
    layers, heads = model.decoder_layers, model.decoder_attention_heads
    supervised = getattr(model, "alignment_heads", None)
    choices = (supervised, heads) if supervised else (None,)
    os.makedirs(a.work, exist_ok=True)
    table = alignment_by_layer(
        a.work, os.path.join(a.data, "bin"), a.path, reference, a.split, a.threads, layers, choices
    )
    print("| heads | " + " | ".join(f"layer {i}" for i in range(layers)) + " |")
    print("|---|" + "---|" * layers)
    for name, rows in table.items():
        print(f"| {name} | " + " | ".join(f"{r['aer']:.3f}" for r in rows) + " |")
    if a.json:
        try:
            with output_file(a.json, **claim) as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump({"checkpoint": a.path, "split": a.split, "aer_by_layer": table}, f, indent=1)
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
