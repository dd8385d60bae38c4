#!/usr/bin/env python3
"""Which --max-tokens/--update-freq fit a GPU's memory for a vanilla_transformer, and where the memory goes.

    python scripts/fit-memory.py --arch vanilla_transformer --memory 15GB --fp16 [--data BIN] [--measure]
    python scripts/fit-memory.py --table 12GB,15GB,24GB,40GB,80GB     # fp32 and fp16, for a README
    python scripts/fit-memory.py --calibrate                           # refit the activation model (profiler)

Without --measure the peak is the calibrated model of fairseq_vanilla/experiments/memory/planner.py;
--measure (CUDA only) runs forward + backward at increasing --max-tokens and reads torch.cuda.max_memory_allocated.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vanilla_transformer", help="vanilla_transformer, _big or _tiny")
    from dataclasses import fields

    from fairseq_vanilla.experiments.memory.planner import PLANNER_FLAGS
    from fairseq_vanilla.models.config import VanillaTransformerConfig

    for f in fields(VanillaTransformerConfig):  # the model's own flags, types and help (default: the arch's)
        if f.name in PLANNER_FLAGS and isinstance(f.default, bool):  # a switch: given, or the arch's (None)
            p.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", default=None, help=f.metadata["help"])
        elif f.name in PLANNER_FLAGS:
            kind = float if isinstance(f.default, float) else int
            p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, help=f.metadata.get("help"))
    p.add_argument("--vocab", type=int, default=37000, help="vocabulary size (default 37000, §5.1; --data reads it)")
    p.add_argument("--no-share-all-embeddings", action="store_true", help="three V×d_model matrices instead of one")
    p.add_argument(
        "--chunked-loss",
        choices=("auto", "on", "off"),
        default="auto",
        help="the criterion's --chunked-loss (default auto: the chunked loss; off: the full log-softmax)",
    )
    p.add_argument("--loss-chunk-tokens", type=int, default=0, help="the criterion's --loss-chunk-tokens (0: from V)")
    p.add_argument("--memory", help="GPU memory: 15GB (10^9 bytes), 14.74GiB, 16000MiB; a bare number is GiB")
    precision = p.add_mutually_exclusive_group()
    for name in ("fp16", "bf16", "memory-efficient-fp16", "memory-efficient-bf16"):
        precision.add_argument(f"--{name}", dest="precision", action="store_const", const=name)
    p.add_argument("--data", help="fairseq-preprocess folder: its vocabulary and the real tokens of its batches")
    p.add_argument("--gpus", type=int, default=1, help="GPUs training together (default 1)")
    p.add_argument("--fill", type=float, help="real target tokens / --max-tokens (default: from --data, else 0.9)")
    p.add_argument("--tokens-per-update", type=int, default=25000, help="target tokens per update (§5.1: 25000)")
    p.add_argument("--measure", action="store_true", help="measure the largest --max-tokens on this CUDA GPU")
    p.add_argument("--check-tokens", type=int, help="also measure one step of N tokens here against the estimate")
    p.add_argument("--table", help="comma-separated memories: a Markdown table of fp32 and fp16 plans")
    p.add_argument("--calibrate", action="store_true", help="measure small models, refit the activation model")
    p.add_argument("--flags-only", action="store_true", help="print only --max-tokens N --update-freq M (for scripts)")
    args = p.parse_args()
    args.precision = args.precision or "fp32"

    from fairseq_vanilla.experiments.memory.report import report

    try:
        print(report(args))
    except ValueError as e:
        p.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
