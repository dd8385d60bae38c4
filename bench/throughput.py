#!/usr/bin/env python3
"""Side-by-side throughput of vanilla_transformer and fairseq's own transformer, through the stock binaries.

    .venv/bin/python bench/throughput.py [--data BIN] [--reps 3] [--updates 60] [--cuda] [--fp16]
        [--batch-sizes 1,8,32,128] [--plot sweep.png] [--checkpoints VANILLA.pt FAIRSEQ.pt]
        [--sizes anchor|base|multi30k]

Runs the two models alternately (A, B, A, B, …) with identical flags, seed and data, and prints ratios
vanilla / fairseq with min, median and max over the repetitions:
- training: target tokens/s (wps) and updates/s after the first --warmup updates, peak resident memory (CPU);
- generation on the test split, repeated and alternated too: sentences/s and tokens/s with beam 5 at every
  --batch-sizes and greedy at the smallest and largest, and the BLEU of both (from checkpoints trained for the same
  number of updates, or two trained checkpoints given with --checkpoints); --plot draws beam-5 sentences/s
  against batch size for both models (PNG);
- achieved training FLOP/s (≈ 6 · parameters · target tokens/s) as a fraction of the machine's measured
  matrix-multiply peak.
Without --data it builds a word-level synthetic corpus (fairseq_vanilla.text.synthetic) in a temporary folder.
Sizes: the anchor model of BENCHMARKS.md, 3+3 layers, d_model 256, d_ff 1024, 4 heads, shared embeddings,
max-tokens 4096.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import run_measured  # bench/measure.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOOL = "bench/throughput.py"  # the owner named in the plot's PNG metadata (text.io.png_metadata)
SIZES = [
    "--encoder-layers",
    "3",
    "--decoder-layers",
    "3",
    "--encoder-embed-dim",
    "256",
    "--decoder-embed-dim",
    "256",
    "--encoder-ffn-embed-dim",
    "1024",
    "--decoder-ffn-embed-dim",
    "1024",
    "--encoder-attention-heads",
    "4",
    "--decoder-attention-heads",
    "4",
    "--share-all-embeddings",
    "--dropout",
    "0.1",
]
SIZE_PRESETS = {  # --sizes: the anchor (above), the paper's base model (§6.1), the Multi30k preset of train.sh
    "anchor": SIZES,
    "base": [
        "--encoder-layers",
        "6",
        "--decoder-layers",
        "6",
        "--encoder-embed-dim",
        "512",
        "--decoder-embed-dim",
        "512",
        "--encoder-ffn-embed-dim",
        "2048",
        "--decoder-ffn-embed-dim",
        "2048",
        "--encoder-attention-heads",
        "8",
        "--decoder-attention-heads",
        "8",
        "--share-all-embeddings",
        "--dropout",
        "0.1",
    ],
    "multi30k": [
        "--encoder-layers",
        "4",
        "--decoder-layers",
        "4",
        "--encoder-embed-dim",
        "128",
        "--decoder-embed-dim",
        "128",
        "--encoder-ffn-embed-dim",
        "256",
        "--decoder-ffn-embed-dim",
        "256",
        "--encoder-attention-heads",
        "4",
        "--decoder-attention-heads",
        "4",
        "--share-all-embeddings",
        "--dropout",
        "0.3",
    ],
}
MODELS = {
    "vanilla": ("vanilla_transformer", "vanilla_label_smoothed_cross_entropy"),
    "fairseq": ("transformer", "label_smoothed_cross_entropy"),
}


def make_corpus(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from fairseq_vanilla.text.synthetic import write_corpus

    write_corpus(str(folder / "raw"), (("train", 12000), ("valid", 300), ("test", 200)), seed=3)
    subprocess.run(
        [
            str(BIN / "fairseq-preprocess"),
            "--source-lang",
            "en",
            "--target-lang",
            "de",
            "--joined-dictionary",
            "--trainpref",
            str(folder / "raw/train"),
            "--validpref",
            str(folder / "raw/valid"),
            "--testpref",
            str(folder / "raw/test"),
            "--destdir",
            str(folder / "bin"),
            "--workers",
            "2",
        ],
        check=True,
        capture_output=True,
    )
    return folder / "bin"


def train(name, data, save, args, env):
    arch, criterion = MODELS[name]
    cmd = [
        str(BIN / "fairseq-train"),
        str(data),
        "--user-dir",
        str(ROOT / "fairseq_vanilla"),
        "--arch",
        arch,
        "--criterion",
        criterion,
        "--label-smoothing",
        "0.1",
        *SIZE_PRESETS[args.sizes],
        "--optimizer",
        "adam",
        "--adam-betas",
        "(0.9, 0.98)",
        "--lr",
        "0.001",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        "100",
        "--max-tokens",
        "4096",
        "--max-update",
        str(args.updates),
        "--seed",
        "1",
        "--log-format",
        "json",
        "--log-interval",
        "10",
        "--disable-validation",
        "--num-workers",
        "0",
        "--save-dir",
        str(save),
        "--no-epoch-checkpoints",
        "--save-interval-updates",
        str(args.updates),
    ]
    if not args.cuda:
        cmd.append("--cpu")
    if args.fp16:
        cmd.append("--fp16")
    out, err, peak = run_measured(cmd, env, poll_seconds=0.2)
    out += err
    logs = [json.loads(m.group(1)) for m in re.finditer(r"\| train_inner \| (\{.*\})", out)]
    logs = [x for x in logs if int(x["num_updates"]) > args.warmup]
    params = int(re.search(r"num\. shared model params: ([\d,]+)", out).group(1).replace(",", ""))
    return {
        "wps": statistics.mean(float(x["wps"]) for x in logs),
        "ups": statistics.mean(float(x["ups"]) for x in logs),
        "peak_mib": peak,
        "params": params,
        "loss": float(logs[-1]["nll_loss"]),
    }


def generate(data, ckpt, beam, batch, args, env):
    cmd = [
        str(BIN / "fairseq-generate"),
        str(data),
        "--user-dir",
        str(ROOT / "fairseq_vanilla"),
        "--path",
        str(ckpt),
        "--beam",
        str(beam),
        "--batch-size",
        str(batch),
        "--gen-subset",
        "test",
        "--remove-bpe",
    ]
    if not args.cuda:
        cmd.append("--cpu")
    if args.fp16:
        cmd.append("--fp16")
    out, err, _ = run_measured(cmd, env, poll_seconds=0.2)
    out += err
    m = re.search(
        r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in [\d.]+s \(([\d.]+) sentences/s, ([\d.]+) tokens/s\)", out
    )
    bleu = float(re.search(r"BLEU4 = ([\d.]+)", out).group(1))
    return {
        "sent/s": float(m.group(3)),
        "tok/s": float(m.group(4)),
        "bleu": bleu,
        "n": int(m.group(1).replace(",", "")),
    }


def matmul_peak(cuda: bool, fp16: bool) -> float:
    import torch

    device = "cuda" if cuda else "cpu"
    dtype = torch.float16 if fp16 else torch.float32
    n = 8192 if cuda else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(5):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if cuda:
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def stats(ratios):
    return f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}"


def plot_batch_sweep(gens, batch_sizes, path: str) -> None:
    """PNG: generation sentences/s (beam 5, median over repetitions) against batch size, both models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name in ("vanilla", "fairseq"):
        ys = [statistics.median(r["sent/s"] for r in gens[(name, 5, b)]) for b in batch_sizes]
        ax.plot(batch_sizes, ys, marker="o", label=f"{name} (beam 5)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("--batch-size (sentences)")
    ax.set_ylabel("sentences / s")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from fairseq_vanilla.text.io import atomic_path, png_metadata

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata=png_metadata(TOOL))
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="binarised data (fairseq-preprocess --joined-dictionary); default: synthetic")
    p.add_argument("--reps", type=int, default=3, help="repetitions of the A/B pair")
    p.add_argument("--updates", type=int, default=60, help="training updates per run")
    p.add_argument("--warmup", type=int, default=20, help="updates left out of the throughput figures")
    p.add_argument("--cuda", action="store_true", help="train and generate on the GPU")
    p.add_argument("--fp16", action="store_true", help="--fp16 (GPU)")
    p.add_argument("--sizes", choices=sorted(SIZE_PRESETS), default="anchor", help="model sizes (default: anchor)")
    p.add_argument(
        "--checkpoints",
        nargs=2,
        metavar=("VANILLA", "FAIRSEQ"),
        help="skip training: measure generation of these two trained checkpoints (needs --data)",
    )
    p.add_argument("--batch-sizes", default="1,128", help="generation batch sizes, comma-separated (default 1,128)")
    p.add_argument("--plot", help="write a PNG of beam-5 sentences/s against batch size here")
    p.add_argument("--json", help="also write the raw measurements here")
    args = p.parse_args()
    if args.checkpoints and not args.data:
        p.error("--checkpoints needs --data (the data the checkpoints were trained on)")
    from fairseq_vanilla.text.io import PipelineError, check_json_output, check_png_output

    try:  # before the measurement: --json and --plot only over this command's own earlier output
        if args.json:
            check_json_output(args.json, ("train", "generate"), reads=args.checkpoints or (), label="--json")
        if args.plot:
            check_png_output(args.plot, TOOL)
    except PipelineError as e:
        sys.exit(f"error: {e}")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = {"vanilla": [], "fairseq": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(args.data) if args.data else make_corpus(tmp)
        if args.checkpoints:
            ckpts = dict(zip(("vanilla", "fairseq"), map(Path, args.checkpoints)))
        else:
            for rep in range(args.reps):
                for name in ("vanilla", "fairseq"):  # alternate A, B, A, B …
                    runs[name].append(train(name, data, tmp / f"{name}{rep}", args, env))
                    print(f"rep {rep + 1} {name:8s} train {runs[name][-1]}", flush=True)
            ckpts = {name: tmp / f"{name}0" / "checkpoint_last.pt" for name in runs}
        settings = [(5, b) for b in batch_sizes] + [(1, b) for b in (min(batch_sizes), max(batch_sizes))]
        gens = {}
        for rep in range(args.reps):
            for beam, batch in settings:
                for name in ("vanilla", "fairseq"):  # alternate A, B within each setting
                    r = generate(data, ckpts[name], beam, batch, args, env)
                    gens.setdefault((name, beam, batch), []).append(r)
                    print(f"rep {rep + 1} generate {name:8s} beam {beam} batch {batch}: {r}", flush=True)
        peak = matmul_peak(args.cuda, args.fp16)

    print(f"\n| measure (vanilla / fairseq) | min / median / max over {args.reps} | vanilla | fairseq |")
    print("| --- | --- | --- | --- |")
    if runs["vanilla"]:
        for key, label in (
            ("wps", "training target tokens/s"),
            ("ups", "training updates/s"),
            ("peak_mib", "peak RSS MiB"),
        ):
            ratios = [a[key] / b[key] for a, b in zip(runs["vanilla"], runs["fairseq"])]
            med = {n: statistics.median(r[key] for r in runs[n]) for n in ("vanilla", "fairseq")}
            print(f"| {label} | {stats(ratios)} | {med['vanilla']:.1f} | {med['fairseq']:.1f} |")
    for beam, batch in settings:
        for key, unit in (("sent/s", "sentences/s"), ("tok/s", "tokens/s")):
            v, f = gens[("vanilla", beam, batch)], gens[("fairseq", beam, batch)]
            ratios = [a[key] / b[key] for a, b in zip(v, f)]
            print(
                f"| generate beam {beam}, batch {batch}: {unit} | {stats(ratios)} | "
                f"{statistics.median(r[key] for r in v):.1f} | {statistics.median(r[key] for r in f):.1f} |"
            )
    v, f = gens[("vanilla", 5, max(batch_sizes))][0], gens[("fairseq", 5, max(batch_sizes))][0]
    budget = "the given checkpoints" if args.checkpoints else f"{args.updates} updates"
    print(f"| BLEU, {budget}, beam 5 ({v['n']} sentences) | | {v['bleu']:.2f} | {f['bleu']:.2f} |")
    if runs["vanilla"]:
        for name in ("vanilla", "fairseq"):
            flops = 6 * runs[name][0]["params"] * statistics.median(r["wps"] for r in runs[name])
            print(
                f"{name}: ≈{flops / 1e9:.1f} GFLOP/s of training = {flops / peak:.1%} of the measured matmul peak "
                f"({peak / 1e9:.0f} GFLOP/s)"
            )
    if args.plot:
        plot_batch_sweep(gens, batch_sizes, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        from fairseq_vanilla.text.io import atomic_write

        with atomic_write(args.json) as f:
            record = {"train": runs, "generate": {str(k): v for k, v in gens.items()}, "matmul_peak": peak}
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
