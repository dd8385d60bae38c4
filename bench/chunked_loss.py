#!/usr/bin/env python3
"""Peak resident memory and training speed of the chunked loss: ours chunked, ours with the full log-softmax, and
fairseq's ``transformer``, side by side on the CPU.

    OMP_NUM_THREADS=1 .venv/bin/python bench/chunked_loss.py [--vocab 37000,9700] [--max-tokens 8192] [--steps 3]
        [--reps 2] [--work runs/chunked] [--precision fp32|bf16] [--step torch|trainer]

Per vocabulary size, a synthetic word-level corpus with that many types on each side (every type occurs; the same types
on both sides, binarised with a joined dictionary) is written and binarised once under --work. Each configuration then
runs in a fresh process: the model and criterion built through fairseq's options and task code (3+3 layers, d_model 256,
d_ff 1024, 4 heads, shared embeddings, dropout 0, label smoothing 0.1). A step is torch's Adam on the fp32 model
(``--step torch``, the default for fp32) or fairseq's own ``Trainer.train_step`` (``--step trainer``, what fairseq-train
runs: fairseq's Adam, and for ``--precision bf16`` fairseq's ``--bf16`` path, a bf16 model and batch with fp32 master
weights; bf16 needs it). One training step on the fullest batch of --max-tokens (it also allocates the gradients and
Adam's state); the same step again with the peak reset (``/proc/self/clear_refs``); then --steps timed steps on the next
fullest batches, the same batches for every configuration. It prints the process's peak resident memory during the
second step (``ru_maxrss``; the first step's beside it), the resident memory before each, and target tokens/s of the
timed steps. The configurations alternate (A, B, C, A, B, C, …); the summary gives min / median / max and the ratios of
medians. Speeds on a busy machine are noisy: compare ratios of one run only.
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = [
    "--encoder-layers", "3", "--decoder-layers", "3", "--encoder-embed-dim", "256", "--decoder-embed-dim", "256",
    "--encoder-ffn-embed-dim", "1024", "--decoder-ffn-embed-dim", "1024", "--encoder-attention-heads", "4",
    "--decoder-attention-heads", "4", "--share-all-embeddings", "--dropout", "0", "--label-smoothing", "0.1",
]  # fmt: skip
OURS = ["--criterion", "vanilla_label_smoothed_cross_entropy", "--chunked-loss"]
CONFIGS = {  # name → (--arch, --criterion and its flags)
    "ours chunked": ("vanilla_transformer", [*OURS, "on"]),
    "ours full": ("vanilla_transformer", [*OURS, "off"]),
    "fairseq transformer": ("transformer", ["--criterion", "label_smoothed_cross_entropy"]),
}


def write_corpus(folder: Path, vocab: int, sentences: int = 3000, seed: int = 1) -> Path:
    """train/valid .en/.de of random words w0 … w{vocab-1}, every word on both sides, lengths 10-40; binarised with
    fairseq-preprocess --joined-dictionary into folder/bin (kept: written once)."""
    dest = folder / "bin"
    if (dest / "train.en-de.de.bin").exists():
        return dest
    rng = random.Random(seed)
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for side in ("en", "de"):
        words = [f"w{i}" for i in range(vocab)]
        rng.shuffle(words)  # every type first, then uniform draws
        lines, pos = [], 0
        for _ in range(sentences):
            n = rng.randint(10, 40)
            sentence = words[pos : pos + n]
            pos += len(sentence)
            sentence += [f"w{rng.randrange(vocab)}" for _ in range(n - len(sentence))]
            lines.append(" ".join(sentence))
        if pos < vocab:
            raise ValueError(f"{sentences} sentences cannot hold {vocab} types")
        (raw / f"train.{side}").write_text("\n".join(lines) + "\n")
        (raw / f"valid.{side}").write_text("\n".join(lines[:20]) + "\n")
    subprocess.run(
        [str(BIN / "fairseq-preprocess"), "--source-lang", "en", "--target-lang", "de", "--joined-dictionary",
         "--trainpref", str(raw / "train"), "--validpref", str(raw / "valid"), "--destdir", str(dest),
         "--workers", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return dest


def rss_mib() -> float:
    """This process's resident memory now, MiB (/proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(config: str, data: str, max_tokens: int, steps: int, precision: str = "fp32", via: str = "torch") -> dict:
    """One configuration in this process: build, one step, --steps timed steps; the figures as a dict."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from fairseq_vanilla.fairseq_fixes.bf16 import untie_tpu_from_bf16

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    arch, criterion = CONFIGS[config]
    argv = [data, "--user-dir", str(ROOT / "fairseq_vanilla"), "--arch", arch, *criterion, *SIZES]
    argv += ["--max-tokens", str(max_tokens), "--cpu", "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)"]
    argv += ["--lr", "1e-4"]
    argv += ["--bf16"] if precision == "bf16" else []
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    cfg = convert_namespace_to_omegaconf(args)
    untie_tpu_from_bf16(cfg, argv)  # as fairseq-train does with the plugin: --bf16 without --tpu
    torch.manual_seed(1)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    model = task.build_model(cfg.model).train()
    crit = task.build_criterion(cfg.criterion)
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=max_tokens, seed=1, max_positions=(1024, 1024))
    batches = sorted(itr.next_epoch_itr(shuffle=True), key=lambda b: -b["ntokens"])[: steps + 1]  # the fullest
    if via == "trainer":
        from fairseq.trainer import Trainer

        trainer = Trainer(cfg, task, model, crit)  # casts model and criterion to bf16 under --bf16

        def step(batch) -> float:
            return float(trainer.train_step([batch])["loss"])

        model = trainer.model

    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98))

        def step(batch) -> float:
            opt.zero_grad()
            loss, _, _ = crit(model, batch)
            loss.backward()
            opt.step()
            return loss.item()

    def peak_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    before = rss_mib()
    first_loss = step(batches[0])  # also allocates the gradients and Adam's m and v
    peak_first = peak_mib()
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM, ru_maxrss) starts again from the RSS now
    settled = rss_mib()
    step(batches[0])
    peak_step = peak_mib()
    t0 = time.perf_counter()
    tokens = sum(b["ntokens"] for b in batches[1:])
    for b in batches[1:]:
        step(b)
    wall = time.perf_counter() - t0
    return dict(
        config=config,
        precision=precision,
        step=via,
        weights=str(next(model.parameters()).dtype),
        vocab=len(task.target_dictionary),
        tokens_step=batches[0]["ntokens"],
        slots_step=int(batches[0]["target"].numel()),
        rss_before_mib=before,
        peak_first_step_mib=peak_first,
        rss_settled_mib=settled,
        peak_step_mib=peak_step,
        tokens_per_s=tokens / wall,
        first_loss=first_loss,
    )


def summary(name: str, values, unit: str) -> str:
    return f"{name} {min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f} {unit}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", default="37000", help="comma-separated types per side (e.g. 37000,9700)")
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--steps", type=int, default=3, help="timed steps after the first")
    p.add_argument("--reps", type=int, default=2, help="alternating repetitions of every configuration")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    p.add_argument("--work", default=str(ROOT / "runs" / "chunked"), help="where the corpora are written")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: fairseq's --bf16 path")
    p.add_argument(
        "--step",
        choices=["torch", "trainer"],
        help="torch's Adam on the model, or fairseq's Trainer (default: torch for fp32, trainer for bf16)",
    )
    p.add_argument("--json", help="also write every run's figures here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.step = a.step or ("trainer" if a.precision == "bf16" else "torch")
    if a.precision == "bf16" and a.step == "torch":
        p.error("--step: bf16 runs through fairseq's Trainer (fp32 master weights); give --step trainer")
    if a.child:
        print(json.dumps(child(a.child, a.data, a.max_tokens, a.steps, a.precision, a.step)), flush=True)
        return
    configs = a.configs.split(",")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONPATH=str(ROOT))
    print(
        f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, --max-tokens {a.max_tokens}, {a.steps} timed steps, "
        f"{a.precision}, step by {a.step}",
        flush=True,
    )
    runs = []
    for vocab in map(int, a.vocab.split(",")):
        data = write_corpus(Path(a.work) / f"v{vocab}", vocab)
        for rep in range(a.reps):
            for config in configs:
                cmd = [sys.executable, __file__, "--child", config, "--data", str(data), "--max-tokens",
                       str(a.max_tokens), "--steps", str(a.steps), "--precision", a.precision,
                       "--step", a.step]  # fmt: skip
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
                r = dict(json.loads(out.strip().splitlines()[-1]), types=vocab, rep=rep)
                runs.append(r)
                print(
                    f"V {r['vocab']:,} rep {rep} {config:20s} step peak {r['peak_step_mib']:7,.0f} MiB (RSS before "
                    f"it {r['rss_settled_mib']:5,.0f}; first step's peak {r['peak_first_step_mib']:7,.0f}, RSS "
                    f"before it {r['rss_before_mib']:5,.0f}), {r['tokens_per_s']:6,.0f} target tokens/s; the "
                    f"measured step: {r['tokens_step']} target tokens ({r['slots_step']} with padding), "
                    f"loss {r['first_loss']:.2f}",
                    flush=True,
                )
        mine = [r for r in runs if r["types"] == vocab]
        median = {c: {k: statistics.median(r[k] for r in mine if r["config"] == c) for k in ("peak_step_mib",
                  "tokens_per_s")} for c in configs}  # fmt: skip
        print(f"V = {mine[0]['vocab']:,} (min / median / max over {a.reps}):")
        for c in configs:
            rs = [r for r in mine if r["config"] == c]
            print(
                f"  {c:20s} {summary('step peak', [r['peak_step_mib'] for r in rs], 'MiB')}, "
                f"{summary('speed', [r['tokens_per_s'] for r in rs], 'target tokens/s')}"
            )
        if "fairseq transformer" in median:
            base = median["fairseq transformer"]
            for c in configs:
                print(
                    f"  {c:20s} / fairseq: peak {median[c]['peak_step_mib'] / base['peak_step_mib']:.2f}×, "
                    f"speed {median[c]['tokens_per_s'] / base['tokens_per_s']:.2f}×"
                )
    if a.json:
        Path(a.json).write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
