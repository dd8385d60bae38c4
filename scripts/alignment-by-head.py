#!/usr/bin/env python3
"""AER of every decoder layer's cross-attention, head by head, and of a gradient × input alignment, in one process.

Teacher-forces the reference translations of a split (fairseq_vanilla/explain/alignment_probe.py) and scores the
links against the prepared folder's reference links (scripts/prepare-alignments.sh); prints a Markdown table.

  python scripts/alignment-by-head.py --path runs/table3/align/seed2/checkpoints/checkpoint_last.pt \\
      --data runs/multi30k [--split valid] [--threads 1] [--batch-size 32] [--json OUT.json]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KEYS = ("aer_by_layer_and_head",)  # what makes a JSON file this command's own output


def check(a) -> str:
    """The first bad argument as ``flag: problem``, or ''."""
    if not os.path.isfile(a.path):
        return f"--path: {a.path}: no such file"
    bin_dir, reference = os.path.join(a.data, "bin"), os.path.join(a.data, "align", f"{a.split}.align")
    if not os.path.isdir(bin_dir):
        return f"--data: {bin_dir}: no such folder (give the --out folder of the prepare script)"
    if not os.path.isfile(reference):
        return f"--data: {reference}: no such file (run scripts/prepare-alignments.sh)"
    if a.threads < 1 or a.batch_size < 1:
        return "--threads/--batch-size: must be at least 1"
    if a.json:
        from fairseq_vanilla.text.io import PipelineError
        from fairseq_vanilla.text.outputs import claim_output

        try:
            claim_output(a.json, **json_claim(a, reference))
        except PipelineError as e:
            return str(e)
    return ""


def json_claim(a, reference: str) -> dict:
    """--json is new, this command's own earlier JSON (replaced), or anything with --force; never an input."""
    from fairseq_vanilla.text.outputs import json_with_keys

    return dict(is_own=json_with_keys(KEYS), force=a.force, flag="--json", reads=(a.path, reference))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", required=True, help="checkpoint (.pt) of a translation model")
    p.add_argument("--data", required=True, help="--out folder of the prepare script (bin/, align/)")
    p.add_argument("--split", default="valid")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    p.add_argument("--json", help="write the result as JSON here too")
    p.add_argument("--force", action="store_true", help="replace --json even if it is not this command's output")
    a = p.parse_args(argv)
    problem = check(a)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    import torch

    from fairseq_vanilla.explain.alignment_probe import markdown, probe
    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError
    from fairseq_vanilla.text.io import PipelineError

    torch.set_num_threads(a.threads)
    reference = os.path.join(a.data, "align", f"{a.split}.align")
    try:
        result = probe(a.path, os.path.join(a.data, "bin"), reference, a.split, a.batch_size)
    except (CheckpointError, PipelineError, FileNotFoundError, ValueError) as e:
        print(f"error: --path/--data: {e}", file=sys.stderr)
        return 1
    print(markdown(result))
    if a.json:
        from fairseq_vanilla.text.outputs import output_file

        try:
            with output_file(a.json, **json_claim(a, reference)) as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump(result, f, indent=1)
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
