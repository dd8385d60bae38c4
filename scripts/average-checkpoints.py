#!/usr/bin/env python3
"""Average the parameters of the last N checkpoints (or of the files given) into one checkpoint
(model parameters only; the optimizer state is dropped).

    python scripts/average-checkpoints.py --dir CHECKPOINT_DIR --last 10 --out averaged.pt
    python scripts/average-checkpoints.py --inputs a.pt b.pt --out averaged.pt

"Last" means the highest epoch numbers (checkpoint{E}.pt) or, with --updates, the highest update numbers
(checkpoint_{E}_{U}.pt). Loads through the plugin's safe loader (weights_only). Writes atomically. The average
records its inputs (``averaged_from``); --out replaces only such an average (or any file with --force), never one of
the inputs or a folder; scripts/train.sh refuses to resume from an average (no optimizer state, no update count).
Bad input: one line 'error: <flag or file>: <problem>' and exit status 2.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError, safe_torch_load  # noqa: E402
from fairseq_vanilla.text.io import PipelineError  # noqa: E402
from fairseq_vanilla.text.output_dirs import AVERAGED_FROM as MARK  # noqa: E402  (train.sh --save refuses an average)
from fairseq_vanilla.text.outputs import claim_output, output_file  # noqa: E402


def is_average(path: str) -> bool:
    """Whether ``path`` is a checkpoint this command wrote (its state names what it averaged)."""
    return MARK in safe_torch_load(path)


def last_checkpoints(folder: str, n: int, by_updates: bool) -> list:
    if not os.path.isdir(folder):
        raise PipelineError(f"--dir: {folder}: no such folder")
    if n < 1:
        raise PipelineError(f"--last: must be at least 1, got {n}")
    pattern = re.compile(r"checkpoint_\d+_(\d+)\.pt$" if by_updates else r"checkpoint(\d+)\.pt$")
    found = sorted(((int(m.group(1)), f) for f in os.listdir(folder) if (m := pattern.match(f))), reverse=True)
    if len(found) < n:
        raise PipelineError(f"--dir: {folder}: {len(found)} checkpoints match {pattern.pattern}, --last {n} asked for")
    return [os.path.join(folder, f) for _, f in found[:n]]


def average(paths: list) -> dict:
    state = None
    total = None
    for path in paths:
        s = safe_torch_load(path)
        model = s["model"]
        if total is None:
            state, total = s, {k: v.double().clone() if v.is_floating_point() else v for k, v in model.items()}
        else:
            if set(model) != set(total):
                raise PipelineError(f"{path}: its parameters differ from {paths[0]}'s (another architecture?)")
            for k, v in model.items():
                if v.is_floating_point():
                    total[k] += v.double()
    state.pop("last_optimizer_state", None)  # an average has no optimizer state of its own; keeps the file small
    state[MARK] = [os.path.abspath(p) for p in paths]
    state["model"] = {
        k: (v / len(paths)).to(state["model"][k].dtype) if v.is_floating_point() else v for k, v in total.items()
    }
    return state


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", help="checkpoint folder")
    p.add_argument("--last", type=int, default=10, help="how many of the latest checkpoints")
    p.add_argument("--updates", action="store_true", help="use checkpoint_E_U.pt files (--save-interval-updates)")
    p.add_argument("--inputs", nargs="+", help="explicit checkpoint files instead of --dir")
    p.add_argument("--out", required=True, help="output checkpoint: new, or an earlier average (replaced)")
    p.add_argument("--force", action="store_true", help="replace --out even if it is not an average of this command")
    a = p.parse_args(argv)
    if bool(a.dir) == bool(a.inputs):
        p.error("give either --dir or --inputs")
    try:
        paths = a.inputs or last_checkpoints(a.dir, a.last, a.updates)
        for path in paths:
            if not os.path.isfile(path):
                raise PipelineError(f"--inputs: {path}: no such checkpoint")
        claim = dict(is_own=is_average, force=a.force, flag="--out", reads=paths)
        claim_output(a.out, **claim)
        state = average(paths)
        with output_file(a.out, **claim) as tmp:
            torch.save(state, tmp)
    except (CheckpointError, PipelineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"averaged {len(paths)} checkpoints ({os.path.basename(paths[-1])} … {os.path.basename(paths[0])}) → {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
