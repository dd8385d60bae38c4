#!/usr/bin/env python3
"""Where a bf16 training step's time goes: vanilla_transformer against fairseq's transformer, per op, CPU.

    OMP_NUM_THREADS=1 .venv/bin/python bench/profile_bf16.py [--data runs/multi30k/bin] [--precisions fp32,bf16]
        [--steps 4] [--reps 2] [--max-tokens 4096] [--top 12] [--no-profile] [--with-fused]

Builds both models through fairseq's own options/task code at the anchor sizes of BENCHMARKS.md (3+3 layers,
d_model 256, d_ff 1024, 4 heads, shared embeddings, dropout 0.1; ``bench/profile_step.py``'s ``build``), takes the
same batches, and times forward + backward (loss included, no optimizer step) in turn, every model in every
precision, then again (--reps rounds), so that a change of load falls on all alike:
- ``fp32``: as ``fairseq-train --cpu``;
- ``bf16``: as ``fairseq-train --cpu --bf16`` (with the repair of ``fairseq_fixes/bf16.py``): fairseq's Trainer casts
  the model and the criterion to bfloat16 (its optimizer keeps fp32 master weights, the same cost for both models,
  left out here); the criterion's log-softmax still runs in fp32 (fairseq's ``utils.log_softmax``);
- ``autocast``: the forward and loss under ``torch.autocast("cpu", dtype=torch.bfloat16)``, fp32 weights.
Prints target tokens/s (median over --reps) for each model and precision, the ratios vanilla / fairseq and
bf16 / fp32, then, unless --no-profile, the --top ops by self CPU time per step for both models side by side
(``torch.profiler``, one more pass of --steps steps each). --with-fused adds a third model, ``vanilla-fused``: ours
with torch's fused attention kernel forced everywhere (the code before the CPU kernel choice of
``modules/attention.py``), timed in the same alternation. Without --data it builds the synthetic corpus of
``bench/throughput.py`` in a temporary folder.
"""

import argparse
import contextlib
import copy
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_step import build  # noqa: E402  (bench/profile_step.py)

NAMES = ["vanilla", "fairseq"]


@contextlib.contextmanager
def kernel(name: str):
    """For ``vanilla-fused``: torch's fused attention kernel for every shape (the rule of the attention module off)."""
    attention_module = importlib.import_module("fairseq_vanilla.modules.attention")  # the module, not the function

    rule = attention_module.fused_kernel_pays
    if name == "vanilla-fused":
        attention_module.fused_kernel_pays = lambda *args: True
    try:
        yield
    finally:
        attention_module.fused_kernel_pays = rule


def prepare(model, crit, precision: str):
    """The model and criterion as fairseq's Trainer would hold them for ``precision``, and the autocast context."""
    if precision == "bf16":
        return model.to(torch.bfloat16), crit.to(torch.bfloat16), contextlib.nullcontext
    if precision == "autocast":
        return model, crit, lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return model, crit, contextlib.nullcontext


def step(model, crit, batch, autocast) -> None:
    """Forward, loss and backward of one batch (gradients cleared first)."""
    model.zero_grad(set_to_none=True)
    with autocast():
        loss, _, _ = crit(model, batch)
    loss.backward()


def timed(name: str, setup, batches, steps: int) -> float:
    """Target tokens/s over ``steps`` steps."""
    model, crit, autocast = setup
    t0 = time.perf_counter()
    tokens = 0
    with kernel(name):
        for i in range(steps):
            batch = batches[1 + i % (len(batches) - 1)]
            step(model, crit, batch, autocast)
            tokens += batch["ntokens"]
    return tokens / (time.perf_counter() - t0)


def profiled(name: str, setup, batches, steps: int) -> dict:
    """Self CPU time per step (ms) of each op over ``steps`` profiled steps."""
    from torch.profiler import ProfilerActivity, profile

    model, crit, autocast = setup
    with kernel(name), profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(model, crit, batches[1 + i % (len(batches) - 1)], autocast)
    return {e.key: e.self_cpu_time_total / 1000 / steps for e in prof.key_averages()}


def print_profile(precision: str, prof: dict, top: int) -> None:
    """The ``top`` ops of either model by self CPU time, side by side (ms per step, share of the step)."""
    names = list(prof)
    totals = {n: sum(prof[n].values()) for n in names}
    keys = sorted(set().union(*prof.values()), key=lambda k: -max(prof[n].get(k, 0) for n in names))
    print(f"\n{precision}: self CPU time per step, ms (share)")
    print(f"{'op':58s}" + "".join(f"{n:>17s}" for n in names))
    for key in keys[:top]:
        cells = "".join(f"{prof[n].get(key, 0):9.1f} ({prof[n].get(key, 0) / totals[n]:4.0%})" for n in names)
        print(f"{key[:58]:58s}{cells}")
    print(f"{'total':58s}" + "".join(f"{totals[n]:17.1f}" for n in names))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="binarised translation data (joined dictionary); default: a synthetic corpus")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, autocast")
    p.add_argument("--steps", type=int, default=4, help="steps per timed (and profiled) repetition")
    p.add_argument("--reps", type=int, default=2, help="alternating repetitions per model and precision")
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--top", type=int, default=12, help="ops shown per profile")
    p.add_argument("--no-profile", action="store_true", help="time only")
    p.add_argument("--with-fused", action="store_true", help="also ours with the fused attention kernel forced")
    a = p.parse_args()
    names = NAMES + ["vanilla-fused"] if a.with_fused else NAMES
    precisions = a.precisions.split(",")
    unknown = set(precisions) - {"fp32", "bf16", "autocast"}
    if unknown:
        sys.exit(f"error: --precisions: unknown {', '.join(sorted(unknown))} (fp32, bf16, autocast)")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data
        if data is None:
            from throughput import make_corpus  # bench/throughput.py

            data = make_corpus(Path(tmp))
        built = {n: build(n, data, a.max_tokens) for n in NAMES}
        built["vanilla-fused"] = built["vanilla"]
        batches = built["vanilla"][2]  # the same batches for both (same task, seed and dataset)
        wps = {(n, pr): [] for n in names for pr in precisions}
        profiles = {}
        setups = {}
        for precision in precisions:
            for n in names:
                model, crit = copy.deepcopy(built[n][0]), built[n][1]  # a criterion holds no weights
                setups[n, precision] = prepare(model, crit, precision)
                with kernel(n):
                    step(*setups[n, precision][:2], batches[0], setups[n, precision][2])  # warm-up
        for _ in range(a.reps):  # every model in every precision, in turn, then again: load changes hit all alike
            for precision in precisions:
                for n in names:
                    wps[n, precision].append(timed(n, setups[n, precision], batches, a.steps))
                    print(f"{precision:8s} {n:14s} {wps[n, precision][-1]:8.0f} tokens/s", flush=True)
        if not a.no_profile:
            for precision in precisions:
                profiles[precision] = {n: profiled(n, setups[n, precision], batches, a.steps) for n in names}
    med = {key: statistics.median(v) for key, v in wps.items()}
    print("\nmedian target tokens/s (forward + backward, alternating)")
    print(
        f"{'':24s}"
        + "".join(f"{pr:>10s}" for pr in precisions)
        + "".join(f"{pr + '/fp32':>14s}" for pr in precisions if pr != "fp32" and "fp32" in precisions)
    )
    for n in names:
        row = "".join(f"{med[n, pr]:10.0f}" for pr in precisions)
        row += "".join(
            f"{med[n, pr] / med[n, 'fp32']:13.2f}x" for pr in precisions if pr != "fp32" and "fp32" in precisions
        )
        print(f"{n:24s}{row}")
    for n in names[::2]:
        print(f"{n + ' / fairseq':24s}" + "".join(f"{med[n, pr] / med['fairseq', pr]:9.2f}x" for pr in precisions))
    for precision, prof in profiles.items():
        print_profile(precision, prof, a.top)


if __name__ == "__main__":
    main()
