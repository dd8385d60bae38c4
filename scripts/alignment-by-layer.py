#!/usr/bin/env python3
"""Where does a translation model's cross-attention align? AER of every decoder layer against the prepared folder's
reference links (scripts/prepare-alignments.sh), on the reference translations (teacher-forced, as
``fairseq-generate --score-reference --print-alignment``): heads averaged, and for an alignment-supervised model
(``vanilla_transformer_align``) its supervised head(s) alone as well.

  python scripts/alignment-by-layer.py --path runs/table3/align/seed2/checkpoints/checkpoint_last.pt \\
      --data runs/multi30k --work runs/table3/align/seed2/by-layer [--split valid] [--json OUT.json] [--force]

--work keeps the fairseq-generate outputs (SPLIT.L*.align.out) for a re-run, with a record of what made them
(made_from.json: the checkpoint's and the reference's SHA-256, the split): a --work made from another checkpoint,
split or reference, or one holding files without that record, is refused in one line; --force replaces the outputs
(only *.align.out files and the record are removed).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


RECORD = "made_from.json"


def claim_work(work: str, made_from: dict, force: bool) -> None:
    """--work may be new, empty, or hold the outputs of the same checkpoint, split and reference (its record); with
    ``force`` the outputs of another are removed first. Raises PipelineError with the line to print."""
    from fairseq_vanilla.text.io import PipelineError

    if os.path.exists(work) and not os.path.isdir(work):
        raise PipelineError(f"--work {work}: is a file, not a folder")
    present = os.listdir(work) if os.path.isdir(work) else []
    if not present:
        return
    record = os.path.join(work, RECORD)
    earlier = None
    if os.path.isfile(record):
        with open(record, encoding="utf-8") as f:
            earlier = json.load(f)
    if earlier == made_from:
        return
    ours = [os.path.join(work, n) for n in present if n.endswith(".align.out") or n == RECORD]
    if not force or len(ours) < len(present):
        what = (
            "holds files this command did not write"
            if len(ours) < len(present)
            else (
                "holds the outputs of another checkpoint, split or reference"
                if earlier
                else "holds outputs without a record of what made them"
            )
        )
        hint = "choose another --work" if len(ours) < len(present) else "choose another --work or give --force"
        raise PipelineError(f"--work {work}: {what}; {hint}")
    for path in ours:
        os.remove(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", required=True, help="checkpoint (.pt) of a translation model")
    p.add_argument("--data", required=True, help="--out folder of the prepare script (bin/, align/)")
    p.add_argument("--work", required=True, help="folder for the fairseq-generate outputs (reused when present)")
    p.add_argument("--split", default="valid")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--json", help="write the table as JSON here too (new, or this command's earlier JSON)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace --json even if it is not this command's output, and --work's outputs of another checkpoint",
    )
    a = p.parse_args(argv)
    reference = os.path.join(a.data, "align", f"{a.split}.align")
    for path, what in ((a.path, "--path"), (reference, "--data")):
        if not os.path.isfile(path):
            print(f"error: {what}: {path}: no such file", file=sys.stderr)
            return 2
    from fairseq_vanilla.text.io import PipelineError
    from fairseq_vanilla.text.outputs import claim_output, json_with_keys, output_file

    claim = dict(is_own=json_with_keys(("aer_by_layer",)), force=a.force, flag="--json", reads=(a.path, reference))
    from fairseq_vanilla.text.provenance import file_sha256

    made_from = {"checkpoint_sha256": file_sha256(a.path), "reference_sha256": file_sha256(reference), "split": a.split}
    try:
        if a.json:
            claim_output(a.json, **claim)
        claim_work(a.work, made_from, a.force)
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
    with open(os.path.join(a.work, RECORD), "w", encoding="utf-8") as f:
        json.dump(made_from, f, indent=1)
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
