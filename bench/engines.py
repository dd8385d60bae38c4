#!/usr/bin/env python3
"""Translation engines side by side on CPU: fairseq-generate against CTranslate2, the same checkpoints.

    OMP_NUM_THREADS=2 .venv/bin/python bench/engines.py --data runs/demo \\
        --vanilla runs/demo/vanilla/checkpoints/checkpoint_best.pt \\
        [--fairseq runs/demo/fairseq_transformer/checkpoints/checkpoint_best.pt] [--reps 3] [--threads 2] \\
        [--settings 5x1,5x64,1x1,1x64] [--limit N] [--plot bench/engines.png] [--json FILE]

--data is a prepared folder (bin/ with dict.*.txt and the binarised test split). Engines:
fairseq-generate with vanilla_transformer; fairseq-generate with fairseq's own transformer (--fairseq); our export
of the vanilla model to CTranslate2 run as float32, int8 and int8_float32; fairseq's transformer through
CTranslate2's own fairseq converter (float32), where it accepts the checkpoint. Each setting (beam × batch size)
runs every engine in turn, --reps times (A, B, C, …, A, B, C, …); every run is a fresh process (peak resident memory
from /proc's VmHWM). Speeds exclude model loading: fairseq-generate's own "Translated … in Xs" line, and the
translate_batch calls for CTranslate2, on the same binarised source tokens. Target tokens count </s>, as fairseq's.
BLEU: tokenised, BPE removed, against fairseq-generate's T- lines.
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
TOOL = "bench/engines.py"  # the owner named in the plot's PNG metadata (text.io.png_metadata)
sys.path.insert(0, str(ROOT))


def hypotheses(text):
    """{id: hypothesis} of fairseq-generate's H- lines, {id: reference} of its T- lines."""
    hyps, refs = {}, {}
    for m in re.finditer(r"^([HT])-(\d+)\t(?:[^\t\n]*\t)?(.*)$", text, re.M):
        (hyps if m.group(1) == "H" else refs)[int(m.group(2))] = m.group(3)
    return hyps, refs


def fairseq_generate(bin_dir, ckpt, beam, batch, env):
    cmd = [
        str(BIN / "fairseq-generate"),
        str(bin_dir),
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
    out, err, peak = run_measured(cmd, env)
    m = re.search(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in ([\d.]+)s", out + err)
    hyps, refs = hypotheses(out)
    n, tokens, seconds = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", "")), float(m.group(3))
    return {"sent/s": n / seconds, "tok/s": tokens / seconds, "peak_mib": peak, "hyps": hyps, "refs": refs}


def ct2_worker(args) -> None:
    """In a fresh process: translate the binarised test split with one CTranslate2 model; JSON on stdout."""
    import ctranslate2
    from fairseq.data import Dictionary, data_utils

    from fairseq_vanilla.inference.fast_translator import search_options

    src_dict = Dictionary.load(os.path.join(args.bin, "dict.en.txt"))
    data = data_utils.load_indexed_dataset(os.path.join(args.bin, "test.en-de.en"), src_dict)
    sources = [
        ["<blank>" if src_dict[int(i)] == "<pad>" else src_dict[int(i)] for i in data[k][:-1]] for k in range(len(data))
    ]
    tr = ctranslate2.Translator(
        args.worker, device="cpu", compute_type=args.compute_type, inter_threads=1, intra_threads=args.threads
    )
    options = search_options(beam=args.beam)
    t0 = time.perf_counter()
    outs = []
    for i in range(0, len(sources), args.batch):
        outs += tr.translate_batch(sources[i : i + args.batch], max_batch_size=args.batch, **options)
    seconds = time.perf_counter() - t0
    hyps = {k: data_utils.post_process(" ".join(o.hypotheses[0]), "subword_nmt") for k, o in enumerate(outs)}
    tokens = sum(len(o.hypotheses[0]) + 1 for o in outs)  # + </s>, as fairseq counts
    print(json.dumps({"sent/s": len(sources) / seconds, "tok/s": tokens / seconds, "hyps": hyps}))


def ct2_generate(model_dir, compute_type, bin_dir, beam, batch, threads, env):
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        str(model_dir),
        "--compute-type",
        compute_type,
        "--bin",
        str(bin_dir),
        "--beam",
        str(beam),
        "--batch",
        str(batch),
        "--threads",
        str(threads),
    ]
    out, _err, peak = run_measured(cmd, env)
    result = json.loads(out.strip().splitlines()[-1])
    result["hyps"] = {int(k): v for k, v in result["hyps"].items()}
    return {**result, "peak_mib": peak}


def convert_fairseq_transformer(ckpt, bin_dir, out):
    """CTranslate2's own fairseq converter on fairseq's transformer; None (and the reason) where it refuses."""
    import torch

    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import allowed_globals

    try:
        from ctranslate2.converters import FairseqConverter

        with torch.serialization.safe_globals(allowed_globals()):  # the project's allow-list, weights_only kept
            FairseqConverter(str(ckpt), str(bin_dir), source_lang="en", target_lang="de").convert(str(out), force=True)
        return out, ""
    except Exception as e:  # report why, keep benchmarking the rest
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def first_sentences(data: Path, n: int, tmp: Path) -> Path:
    """The first n sentences of DATA's segmented test split, binarised with DATA's dictionaries."""
    seg = data / "bpe" if (data / "bpe" / "test.en").exists() else data / "spm"
    for lang in ("en", "de"):
        lines = (seg / f"test.{lang}").read_text(encoding="utf-8").splitlines()[:n]
        (tmp / f"test.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run(
        [
            str(BIN / "fairseq-preprocess"),
            "--source-lang",
            "en",
            "--target-lang",
            "de",
            "--srcdict",
            str(data / "bin" / "dict.en.txt"),
            "--tgtdict",
            str(data / "bin" / "dict.de.txt"),
            "--testpref",
            str(tmp / "test"),
            "--destdir",
            str(tmp / "bin"),
            "--workers",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    return tmp / "bin"


def fmt(values):
    return f"{min(values):,.1f} / {statistics.median(values):,.1f} / {max(values):,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="prepared folder (bin/ inside)")
    parser.add_argument("--vanilla", help="vanilla_transformer checkpoint")
    parser.add_argument("--fairseq", help="fairseq transformer checkpoint (optional)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", default="5x1,5x64,1x1,1x64", help="BEAMxBATCH,…")
    parser.add_argument("--compute-types", default="float32,int8,int8_float32")
    parser.add_argument("--limit", type=int, help="only the first N test sentences (re-binarised from DATA/bpe)")
    parser.add_argument("--plot", help="PNG of sentences/s per engine and setting")
    parser.add_argument("--json", help="write the per-run figures here")
    # worker mode (internal)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--compute-type", help=argparse.SUPPRESS)
    parser.add_argument("--bin", help=argparse.SUPPRESS)
    parser.add_argument("--beam", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return ct2_worker(args)
    if not (args.data and args.vanilla):
        parser.error("--data and --vanilla are required")
    from fairseq_vanilla.text.io import PipelineError, check_json_output, check_png_output

    try:  # before hours of measuring: --json and --plot only over this command's own earlier output
        if args.json:
            check_json_output(args.json, ("rows",), reads=(args.vanilla, args.fairseq), label="--json")
        if args.plot:
            check_png_output(args.plot, TOOL)
    except PipelineError as e:
        sys.exit(f"error: {e}")

    from fairseq_vanilla.evaluation.translation import generate_lines_bleu
    from fairseq_vanilla.inference.ctranslate2 import write_model

    bin_dir = Path(args.data) / "bin"
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="engines-"))
    if args.limit:
        bin_dir = first_sentences(Path(args.data), args.limit, tmp)
    engines = {"fairseq-generate vanilla": lambda b, n: fairseq_generate(bin_dir, args.vanilla, b, n, env)}
    if args.fairseq:
        engines["fairseq-generate transformer"] = lambda b, n: fairseq_generate(bin_dir, args.fairseq, b, n, env)
    ours = write_model(args.vanilla, str(bin_dir), str(tmp / "vanilla"))
    for ct in args.compute_types.split(","):
        engines[f"ct2 vanilla {ct}"] = lambda b, n, ct=ct: ct2_generate(ours, ct, bin_dir, b, n, args.threads, env)
    if args.fairseq:
        theirs, why = convert_fairseq_transformer(args.fairseq, bin_dir, tmp / "transformer")
        if theirs:
            engines["ct2 transformer float32"] = lambda b, n: ct2_generate(
                theirs, "float32", bin_dir, b, n, args.threads, env
            )
        else:
            print(f"CTranslate2's fairseq converter refused {args.fairseq}: {why}")
    settings = [tuple(int(x) for x in s.split("x")) for s in args.settings.split(",")]
    runs = {(s, e): [] for s in settings for e in engines}
    t0 = time.time()
    for rep in range(args.reps):
        for beam, batch in settings:
            for name, run in engines.items():
                runs[(beam, batch), name].append(run(beam, batch))
        print(f"repetition {rep + 1}/{args.reps} done after {time.time() - t0:.0f} s", flush=True)
    refs = next(r for r in runs.values() if r[0].get("refs"))[0]["refs"]
    base = "fairseq-generate vanilla"
    print(f"\n{len(refs)} sentences, {args.threads} threads, {args.reps} alternating repetitions; min / median / max")
    print(
        "| beam × batch | engine | sentences/s | target tokens/s | × fairseq-generate vanilla (median sent/s) "
        "| × fairseq-generate, same model | same hypotheses as fairseq-generate, same model | BLEU | peak MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    table = []
    for beam, batch in settings:
        median = {name: statistics.median(r["sent/s"] for r in runs[(beam, batch), name]) for name in engines}
        for name in engines:
            rs = runs[(beam, batch), name]
            speed = [r["sent/s"] for r in rs]
            own = "fairseq-generate " + name.split()[1]  # the same model's fairseq-generate
            same = sum(rs[0]["hyps"][i] == runs[(beam, batch), own][0]["hyps"][i] for i in refs) / len(refs)
            row = dict(
                beam=beam,
                batch=batch,
                engine=name,
                sent=speed,
                tok=[r["tok/s"] for r in rs],
                ratio=median[name] / median[base],
                own_ratio=median[name] / median[own],
                same=same,
                bleu=generate_lines_bleu(rs[0]["hyps"], refs),
                peak=max(r["peak_mib"] for r in rs),
            )
            table.append(row)
            print(
                f"| {beam} × {batch} | {name} | {fmt(row['sent'])} | {fmt(row['tok'])} | {row['ratio']:.2f} | "
                f"{row['own_ratio']:.2f} | "
                f"{100 * same:.1f} % | {row['bleu']:.2f} | {row['peak']:,} |"
            )
    if args.json:
        from fairseq_vanilla.text.io import atomic_write

        with atomic_write(args.json) as f:
            json.dump({"command": " ".join(sys.argv), "threads": args.threads, "rows": table}, f, indent=1)
    if args.plot:
        plot(table, settings, list(engines), args.plot)


def plot(table, settings, engines, path) -> None:
    """PNG: median sentences/s per engine (bars) for each beam × batch setting, log scale."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(engines)
    for j, name in enumerate(engines):
        ys = [
            statistics.median(next(r["sent"] for r in table if (r["beam"], r["batch"], r["engine"]) == (b, n, name)))
            for b, n in settings
        ]
        ax.bar([i + j * width for i in range(len(settings))], ys, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(settings))])
    ax.set_xticklabels([f"beam {b}, batch {n}" if b > 1 else f"greedy, batch {n}" for b, n in settings])
    ax.set_yscale("log")
    ax.set_ylabel("sentences/s (median)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    from fairseq_vanilla.text.io import atomic_path, png_metadata

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", metadata=png_metadata(TOOL))


if __name__ == "__main__":
    main()
