#!/usr/bin/env python3
"""Where a training step's time goes: vanilla_transformer against fairseq's transformer, torch.profiler, CPU.

    .venv/bin/python bench/profile_step.py --data runs/demo/bin [--steps 6] [--max-tokens 4096]

Builds both models through fairseq's own options/task code with the anchor sizes of BENCHMARKS.md
(3+3 layers, d_model 256,
d_ff 1024, 4 heads, shared embeddings), takes the same batches, and profiles forward + backward + Adam step
(first step left out). Prints, per model, the step time and the share of self CPU time in matrix products
(aten::mm/addmm/bmm/baddbmm and the fused attention kernel) against everything else, alternating A, B, A, B.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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
MODELS = {
    "vanilla": ("vanilla_transformer", "vanilla_label_smoothed_cross_entropy"),
    "fairseq": ("transformer", "label_smoothed_cross_entropy"),
}
MATMUL = (
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
)


def build(name, data, max_tokens):
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    arch, criterion = MODELS[name]
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser,
        [
            str(data),
            "--user-dir",
            str(ROOT / "fairseq_vanilla"),
            "--arch",
            arch,
            "--criterion",
            criterion,
            "--label-smoothing",
            "0.1",
            *SIZES,
            "--max-tokens",
            str(max_tokens),
            "--seed",
            "1",
            "--cpu",
        ],
    )
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(1)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    model = task.build_model(cfg.model)
    crit = task.build_criterion(cfg.criterion)
    itr = task.get_batch_iterator(
        task.dataset("train"), max_tokens=max_tokens, seed=1, max_positions=(1024, 1024)
    ).next_epoch_itr(shuffle=True)
    batches = [next(itr) for _ in range(8)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98))
    return model.train(), crit, batches, opt


def step(model, crit, batch, opt):
    opt.zero_grad()
    loss, _, _ = crit(model, batch)
    loss.backward()
    opt.step()


def profile(name, data, steps, max_tokens):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    model, crit, batches, opt = build(name, data, max_tokens)
    step(model, crit, batches[0], opt)  # warm-up
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for i in range(steps):
            step(model, crit, batches[1 + i % 7], opt)
        wall = (time.perf_counter() - t0) / steps
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMUL)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
    return wall, mm / total, [(e.key, e.self_cpu_time_total / total) for e in top]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="binarised translation data (joined dictionary)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=4096)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    res = {"vanilla": [], "fairseq": []}
    for _ in range(a.reps):
        for name in ("vanilla", "fairseq"):
            res[name].append(profile(name, a.data, a.steps, a.max_tokens))
            wall, share, top = res[name][-1]
            print(
                f"{name:8s} step {wall * 1000:.0f} ms (with profiler), matmul share {share:.1%}; top: "
                + ", ".join(f"{k} {v:.0%}" for k, v in top),
                flush=True,
            )
    for name in res:
        print(
            f"{name}: median step {statistics.median(r[0] for r in res[name]) * 1000:.0f} ms, "
            f"median matmul share {statistics.median(r[1] for r in res[name]):.1%}"
        )


if __name__ == "__main__":
    main()
