#!/usr/bin/env python3
"""Average the parameters of the last N checkpoints (or of the files given) into one checkpoint
(model parameters only; the optimizer state is dropped).

    python scripts/average-checkpoints.py --dir CHECKPOINT_DIR --last 10 --out averaged.pt
    python scripts/average-checkpoints.py --inputs a.pt b.pt --out averaged.pt

"Last" means the highest epoch numbers (checkpoint{E}.pt) or, with --updates, the highest update numbers
(checkpoint_{E}_{U}.pt). Loads through the plugin's safe loader (weights_only). Writes atomically.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError, safe_torch_load  # noqa: E402


def last_checkpoints(folder: str, n: int, by_updates: bool) -> list:
    pattern = re.compile(r"checkpoint_\d+_(\d+)\.pt$" if by_updates else r"checkpoint(\d+)\.pt$")
    found = sorted(((int(m.group(1)), f) for f in os.listdir(folder) if (m := pattern.match(f))), reverse=True)
    if len(found) < n:
        raise SystemExit(f"error: {folder}: {len(found)} checkpoints match {pattern.pattern}, --last {n} asked for")
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
                raise SystemExit(f"error: {path}: its parameters differ from {paths[0]}'s (another architecture?)")
            for k, v in model.items():
                if v.is_floating_point():
                    total[k] += v.double()
    state.pop("last_optimizer_state", None)  # an average has no optimizer state of its own; keeps the file small
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
    p.add_argument("--out", required=True, help="output checkpoint")
    a = p.parse_args(argv)
    if bool(a.dir) == bool(a.inputs):
        p.error("give either --dir or --inputs")
    paths = a.inputs or last_checkpoints(a.dir, a.last, a.updates)
    try:
        state = average(paths)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    tmp = a.out + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, a.out)
    print(f"averaged {len(paths)} checkpoints ({os.path.basename(paths[-1])} … {os.path.basename(paths[0])}) → {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
