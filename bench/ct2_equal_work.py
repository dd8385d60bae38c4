#!/usr/bin/env python3
"""CTranslate2 models side by side at equal work: every hypothesis exactly --tokens tokens long.

    OMP_NUM_THREADS=2 .venv/bin/python bench/ct2_equal_work.py --data runs/multi30k \\
        --models runs/ct2/ours,runs/ct2/ours-copy,runs/ct2/theirs [--tokens 20] [--limit 100] [--reps 5]

Whole-command speeds (bench/engines.py) mix two things: how fast an engine runs the model, and how many tokens the
model chooses to generate (a model that runs on to the length limit on a few sentences costs more at batch 1). Here
the decoding length is fixed (CTranslate2's ``min_decoding_length`` = ``max_decoding_length`` = --tokens), so each
model does the same number of decoder steps on the same sources (the first --limit sentences of DATA's segmented
test split): a ratio away from 1 is the cost of the model's computation alone. Give a copy of one folder as a
second model: its ratio to the first is the noise floor. Models run in turn, --reps times (A, B, C, A, B, C, …);
the median time each. Prints a Markdown table with the CPU, threads and settings.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sources(data: str, limit: int):
    for seg in ("bpe", "spm"):
        path = os.path.join(data, seg, "test.en")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return [line.split() for line in f.read().splitlines()[:limit]]
    raise SystemExit(f"error: --data: {data}: no bpe/test.en or spm/test.en (the --out folder of a prepare script)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="prepared folder (its segmented test.en)")
    p.add_argument("--models", required=True, help="comma-separated CTranslate2 model folders; ratios to the first")
    p.add_argument("--tokens", type=int, default=20, help="tokens of every hypothesis (default 20)")
    p.add_argument("--limit", type=int, default=100, help="number of test sentences (default 100)")
    p.add_argument("--settings", default="5x1", help="BEAMxBATCH,… (default 5x1)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    models = [m for m in a.models.split(",") if m]
    for m in models:
        if not os.path.isfile(os.path.join(m, "model.bin")):
            raise SystemExit(f"error: --models: {m}: not a CTranslate2 model folder (no model.bin)")
    if a.tokens < 1 or a.limit < 1 or a.reps < 1 or a.threads < 1:
        raise SystemExit("error: --tokens/--limit/--reps/--threads: must be positive")
    try:
        settings = [tuple(int(x) for x in s.split("x")) for s in a.settings.split(",")]
    except ValueError:
        raise SystemExit(f"error: --settings: {a.settings!r}: not BEAMxBATCH,…") from None
    src = sources(a.data, a.limit)

    import ctranslate2

    from fairseq_vanilla.experiments.precision import cpu_description

    translators = {
        m: ctranslate2.Translator(m, device="cpu", compute_type="float32", intra_threads=a.threads) for m in models
    }
    print(
        f"{cpu_description()}; ctranslate2 {ctranslate2.__version__}, float32, {a.threads} threads; "
        f"{len(src)} sentences × {a.tokens} tokens; median of {a.reps} alternating repetitions"
    )
    print("\n| beam × batch | " + " | ".join(os.path.basename(m.rstrip("/")) for m in models) + " |")
    print("| --- |" + " --- |" * len(models))
    for beam, batch in settings:
        seconds = {m: [] for m in models}
        for _ in range(a.reps):
            for m, translator in translators.items():
                t0 = time.perf_counter()
                for i in range(0, len(src), batch):
                    out = translator.translate_batch(
                        src[i : i + batch],
                        beam_size=beam,
                        max_batch_size=batch,
                        min_decoding_length=a.tokens,
                        max_decoding_length=a.tokens,
                        return_scores=False,
                    )
                    if any(len(o.hypotheses[0]) != a.tokens for o in out):
                        raise SystemExit(f"error: {m}: a hypothesis is not {a.tokens} tokens long")
                seconds[m].append(time.perf_counter() - t0)
        median = {m: statistics.median(t) for m, t in seconds.items()}
        first = median[models[0]]
        cells = [f"{median[m]:.2f} s ({median[m] / first:.3f}×)" for m in models]
        print(f"| {beam} × {batch} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
