#!/usr/bin/env python3
"""Is attention faithful? Erasure (ERASER comprehensiveness) of four attribution methods and a random ranking.

    OMP_NUM_THREADS=2 .venv/bin/python bench/erasure.py --data runs/imdb \\
        --path runs/imdb_cpu_s1/checkpoint_best.pt --path runs/imdb_cpu_s2/checkpoint_best.pt \\
        --path runs/imdb_cpu_s3/checkpoint_best.pt --limit 1000 --out examples/attention/results

Each --path is one trained classifier (e.g. scripts/train-imdb.sh --preset cpu with -- --seed 1, 2, 3). On --limit
test reviews (a seeded random choice, the same for every classifier), each method ranks the review's tokens; the
top k % (k = 1, 5, 10, 20; at least one token) are deleted and the review is classified again. Writes OUT/erasure.json
(command, versions, per-classifier figures, mean ± sd), OUT/erasure.md (the tables) and OUT/erasure.png (the plot).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ("attention", "rollout", "gradient", "integrated-gradients")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", action="append", required=True, help="classifier checkpoint; repeat for more seeds")
    p.add_argument("--data", required=True, help="the --out folder of scripts/prepare-imdb.sh")
    p.add_argument("--split", default="test", help="binarised split to read (default test)")
    p.add_argument("--limit", type=int, default=1000, help="number of reviews (default 1000)")
    p.add_argument("--ks", default="1,5,10,20", help="percentages of the review's tokens to erase (default 1,5,10,20)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)}")
    p.add_argument("--seed", type=int, default=1, help="seed of the review choice and the random ranking")
    p.add_argument("--steps", type=int, default=50, help="integrated-gradients steps (default 50)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", required=True, help="folder for erasure.json, erasure.md and erasure.png")
    a = p.parse_args(argv)

    def fail(where: str, problem: str) -> int:
        print(f"error: {where}: {problem}", file=sys.stderr)
        return 1

    methods = [m for m in a.methods.split(",") if m]
    if not methods or any(m not in METHODS for m in methods):
        return fail("--methods", f"{a.methods!r}: choose from {', '.join(METHODS)}")
    try:
        fractions = [float(k) / 100 for k in a.ks.split(",")]
    except ValueError:
        return fail("--ks", f"{a.ks!r}: not a comma-separated list of percentages")
    if not all(0 < f <= 1 for f in fractions):
        return fail("--ks", f"{a.ks!r}: each percentage must be in (0, 100]")
    if a.limit < 1 or a.steps < 1 or a.batch_size < 1:
        return fail("--limit/--steps/--batch-size", "must be positive")
    for path in a.path:
        if not os.path.isfile(path):
            return fail("--path", f"{path}: no such checkpoint")
    data_bin = os.path.join(a.data, "bin")
    if not os.path.isdir(os.path.join(data_bin, "input0")):
        return fail("--data", f"{a.data}: not the --out folder of scripts/prepare-imdb.sh (no bin/input0/)")
    if os.path.exists(a.out) and not os.path.isdir(a.out):
        return fail("--out", f"{a.out}: exists and is not a folder")
    from fairseq_vanilla.text.io import PipelineError, check_json_output

    try:  # before the measurement: erasure.json, .md and .png only over this command's own earlier output
        record_path = os.path.join(a.out, "erasure.json")
        companions = [os.path.join(a.out, "erasure" + ext) for ext in (".md", ".png")]
        check_json_output(record_path, ("per_checkpoint", "summary"), reads=a.path, companions=companions)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if {"gradient", "integrated-gradients"} & set(methods):
        try:
            import captum  # noqa: F401
        except ImportError:
            return fail("--methods", "gradient and integrated-gradients need Captum: pip install -e '.[explain]'")

    import torch

    from fairseq_vanilla.explain import erasure
    from fairseq_vanilla.explain.report import plot, report
    from fairseq_vanilla.text.io import atomic_path, atomic_write

    per_checkpoint = []
    for path in a.path:
        t0 = time.time()
        try:
            model, task = erasure.load_classifier(path, data_bin)
        except (OSError, ValueError, RuntimeError) as e:
            return fail("--path", str(e).splitlines()[0])
        try:
            task.load_dataset(a.split)
        except (OSError, ValueError) as e:
            return fail("--split", str(e).splitlines()[0])
        n = len(task.datasets[a.split])
        indices = erasure.pick_reviews(n, min(a.limit, n), a.seed)
        result = erasure.measure_checkpoint(
            model, task, a.split, indices, fractions, methods, a.seed, a.batch_size, a.steps
        )
        result.update(checkpoint=path, seconds=round(time.time() - t0, 1))
        per_checkpoint.append(result)
        print(f"{path}: {len(indices)} reviews, accuracy {result['accuracy']:.4f}, {result['seconds']} s", flush=True)
    summary = erasure.summarise(per_checkpoint)
    try:
        import captum

        versions = {"torch": torch.__version__, "captum": captum.__version__}
    except ImportError:
        versions = {"torch": torch.__version__}
    record = {
        "command": " ".join([os.path.basename(sys.executable), "bench/erasure.py", *(argv or sys.argv[1:])]),
        "versions": versions,
        "data": a.data,
        "split": a.split,
        "reviews": per_checkpoint[0]["reviews"],
        "fractions": fractions,
        "methods": methods,
        "seed": a.seed,
        "integrated_gradients_steps": a.steps,
        "per_checkpoint": per_checkpoint,
        "summary": summary,
    }
    os.makedirs(a.out, exist_ok=True)
    with atomic_write(os.path.join(a.out, "erasure.json")) as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    table = report(summary, record["reviews"], len(per_checkpoint))
    with atomic_write(os.path.join(a.out, "erasure.md")) as f:
        f.write(table)
    with atomic_path(os.path.join(a.out, "erasure.png")) as tmp:
        plot(summary, tmp)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
