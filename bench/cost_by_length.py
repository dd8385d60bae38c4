#!/usr/bin/env python3
"""Cost against length: time and peak memory of one training step (forward + backward), Transformer against LSTM.

    OMP_NUM_THREADS=2 .venv/bin/python bench/cost_by_length.py [--threads 2] [--out examples/baselines/cost-by-length]
    .venv/bin/python bench/cost_by_length.py --quick --out /tmp/cost   # tiny models, two lengths: shows it works

Self-attention costs O(n²·d) a layer, a recurrent layer O(n·d²) (§4, Table 1 of the paper): the question is from
which source length n the first costs more on this machine. Both models are built through fairseq's own option
parsing (``--user-dir fairseq_vanilla``): our ``vanilla_transformer`` at the Multi30k scale of
examples/table3/table3.yaml (d_model 128, d_ff 512, h 8, 6 + 6 layers, shared embeddings) and fairseq's ``lstm`` at
the size of the ``lstm`` row of examples/baselines/table.yaml (2 + 2 layers, a bidirectional encoder of 160 a
direction, decoder 256, Luong-style attention, shared embeddings: 3.84 M parameters against the Transformer's
4.02 M). The batches are synthetic, of equal tokens: at length n, ⌊tokens / n⌋ sentences of n source and n target
tokens, random words of a dictionary of Multi30k's size. One step = the label-smoothed cross-entropy and its
backward (no optimiser step: it costs the same at every length). Each (model, length) runs in a fresh process, so
that its peak resident memory is its own: reported is the growth of the resident set over the steps (activations,
gradients, the allocator's caches) above what the process held before them.
Prints a table; writes OUT.json and OUT.png.
"""

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VOCAB = 9700  # Multi30k's joined BPE dictionary (runs/multi30k/bin/dict.en.txt)
COMMON = ["--share-all-embeddings", "--dropout", "0.1"]
FULL = {
    "transformer": ["--arch", "vanilla_transformer", "--encoder-layers", "6", "--decoder-layers", "6",
                    "--encoder-embed-dim", "128", "--encoder-ffn-embed-dim", "512", "--encoder-attention-heads", "8"],
    "lstm": ["--arch", "lstm", "--encoder-bidirectional", "--encoder-layers", "2", "--decoder-layers", "2",
             "--encoder-embed-dim", "128", "--decoder-embed-dim", "128", "--decoder-out-embed-dim", "128",
             "--encoder-hidden-size", "160", "--decoder-hidden-size", "256"],
}  # fmt: skip
QUICK = {
    "transformer": ["--arch", "vanilla_transformer", "--encoder-layers", "1", "--encoder-embed-dim", "32",
                    "--encoder-ffn-embed-dim", "64", "--encoder-attention-heads", "4"],
    "lstm": ["--arch", "lstm", "--encoder-bidirectional", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
             "--decoder-out-embed-dim", "32", "--encoder-hidden-size", "24", "--decoder-hidden-size", "24"],
}  # fmt: skip


def write_dictionary(folder: str, size: int) -> None:
    """A joined en/de dictionary of ``size`` made-up words: all that building a translation model needs."""
    words = "".join(f"w{i} {size - i}\n" for i in range(size))
    for lang in ("en", "de"):
        Path(folder, f"dict.{lang}.txt").write_text(words, encoding="utf-8")


def build(folder: str, flags):
    """(model, criterion, task) through fairseq's parser, as fairseq-train builds them."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    argv = [folder, "--user-dir", str(ROOT / "fairseq_vanilla"), "--task", "translation", "-s", "en", "-t", "de"]
    argv += ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--cpu", *COMMON, *flags]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    torch.manual_seed(1)
    task = tasks.setup_task(cfg.task)
    return task.build_model(cfg.model), task.build_criterion(cfg.criterion), task


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def synthetic_batch(task, n: int, tokens: int):
    """⌊tokens / n⌋ sentences of n source and n target tokens (random words; the target ends with </s>)."""
    import torch

    d = task.source_dictionary
    B = max(1, tokens // n)
    src = torch.randint(d.nspecial, len(d), (B, n))  # (B, n)
    target = torch.randint(d.nspecial, len(d), (B, n))  # (B, n)
    target[:, -1] = d.eos()
    prev = torch.cat([target.new_full((B, 1), d.eos()), target[:, :-1]], dim=1)  # (B, n): shifted right
    return {
        "net_input": {"src_tokens": src, "src_lengths": torch.full((B,), n), "prev_output_tokens": prev},
        "target": target,
        "ntokens": B * n,
        "nsentences": B,
    }


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_one(folder: str, flags, n: int, tokens: int, steps: int) -> dict:
    """Median time of ``steps`` forward + backward steps (after one warm-up) and the peak resident-set growth."""
    model, criterion, task = build(folder, flags)
    model.train()
    batch = synthetic_batch(task, n, tokens)
    before = resident_bytes()
    times = []
    for i in range(steps + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss, _, _ = criterion(model, batch)
        loss.backward()
        if i > 0:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kibibytes
    return {
        "length": n,
        "sentences": batch["nsentences"],
        "step_ms": 1000 * statistics.median(times),
        "peak_mib": max(0, peak - before) / 2**20,
        "params": parameters(model),
    }


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, rows in results["models"].items():
        lengths = [r["length"] for r in rows]
        ax_t.plot(lengths, [r["step_ms"] for r in rows], marker="o", label=name)
        ax_m.plot(lengths, [r["peak_mib"] for r in rows], marker="o", label=name)
    for ax, label in ((ax_t, "forward + backward (ms)"), (ax_m, "peak memory growth (MiB)")):
        ax.set_xscale("log")
        ax.set_xticks(lengths, [str(n) for n in lengths], minor=False)
        ax.minorticks_off()
        ax.set_xlabel(f"source length n ({results['tokens']} tokens a batch)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_t.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="10,25,50,100,200", help="source lengths, comma-separated")
    p.add_argument("--tokens", type=int, default=4000, help="source tokens a batch (Multi30k's --max-tokens 4096)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per (model, length), after one warm-up")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    p.add_argument("--quick", action="store_true", help="tiny models, lengths 10 and 25, 256 tokens, 1 step")
    p.add_argument("--out", default=str(ROOT / "examples" / "baselines" / "cost-by-length"), help="OUT.json, OUT.png")
    p.add_argument("--one", nargs=2, metavar=("MODEL", "LENGTH"), help=argparse.SUPPRESS)  # a worker process
    p.add_argument("--flags", help=argparse.SUPPRESS)
    a = p.parse_args()
    logging.disable(logging.INFO)  # fairseq's and Hydra's INFO and DEBUG lines: this script prints its own table
    warnings.filterwarnings("ignore", category=UserWarning)  # Hydra's deprecation notes while fairseq builds a config
    try:
        lengths = [int(x) for x in a.lengths.split(",")]
        if any(n < 2 for n in lengths):
            raise ValueError
    except ValueError:
        print(f"error: --lengths: integers of at least 2, comma-separated, got {a.lengths!r}", file=sys.stderr)
        return 2
    if not a.one:  # the parent writes OUT.json and OUT.png: only over its own earlier output
        from fairseq_vanilla.text.io import PipelineError, check_json_output

        try:
            check_json_output(a.out + ".json", ("tokens", "models"), label="--out", companions=(a.out + ".png",))
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if a.quick:
        lengths, a.tokens, a.steps = [10, 25], 256, 1
    import torch

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as folder:
        write_dictionary(folder, VOCAB)
        if a.one:  # the worker: one (model, length), printed as JSON
            print(json.dumps(measure_one(folder, json.loads(a.flags), int(a.one[1]), a.tokens, a.steps)))
            return 0
        flags = QUICK if a.quick else FULL
    from fairseq_vanilla.experiments.precision import cpu_description

    results = {"tokens": a.tokens, "steps": a.steps, "threads": a.threads, "flags": flags, "models": {}}
    results["machine"] = {"cpu": cpu_description(), "torch": torch.__version__, "command": " ".join(sys.argv)}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), PYTHONPATH=str(ROOT))
    for name, model_flags in flags.items():
        results["models"][name] = []
        for n in lengths:
            cmd = [sys.executable, __file__, "--one", name, str(n), "--flags", json.dumps(model_flags)]
            cmd += ["--tokens", str(a.tokens), "--steps", str(a.steps), "--threads", str(a.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(f"error: {name} at length {n}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                return 1
            results["models"][name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{results['machine']['cpu']}, torch {torch.__version__}")
    print(f"{a.tokens} source tokens a batch, {a.threads} thread(s), median of {a.steps} step(s)")
    print("| n | sentences | model | parameters | forward + backward (ms) | peak memory growth (MiB) |")
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for i, n in enumerate(lengths):
        for name, rows in results["models"].items():
            r = rows[i]
            print(f"| {n} | {r['sentences']} | {name} | {r['params']:,} | {r['step_ms']:.0f} | {r['peak_mib']:.0f} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot(results, a.out + ".png")
    print(f"wrote {a.out}.json and {a.out}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
