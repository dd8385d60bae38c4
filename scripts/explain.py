#!/usr/bin/env python3
"""Which words decided a trained classifier's verdict: raw reviews on standard input, one a line.

Prints per review a line 'review N<TAB>label<TAB>probability', then per method a line 'method<TAB>word score<TAB>…'
with the review's words ranked by importance (a word's score is the sum of its BPE / sentencepiece pieces' scores).
--html writes a page highlighting each word by its score, one line per method: every method, or the one --method
names. Methods: attention (last layer, mean over heads), rollout (Abnar & Zuidema 2020), gradient (gradient x
input) and integrated-gradients (the last two need Captum: pip install -e '.[explain]').

  printf 'A wonderful film.\\n' | python scripts/explain.py --path CKPT --data runs/imdb --method rollout \\
      --html out.html

--html replaces only a page this command wrote (its generator tag), or any file with --force; never --path.
Bad input: one line 'error: <flag>: <problem>' and exit status 2.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ("attention", "rollout", "gradient", "integrated-gradients")
CLASSIFIER_TASKS = ("imdb_classification", "text_classification")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", required=True, help="classifier checkpoint (.pt)")
    p.add_argument("--data", required=True, help="the --out folder of scripts/prepare-imdb.sh the model was trained on")
    p.add_argument("--method", choices=METHODS, help="one method (default: rollout; with --html and no --method: all)")
    p.add_argument("--html", help="write a page highlighting every word by its score to this file")
    p.add_argument("--steps", type=int, default=50, help="integration steps of integrated gradients (default 50)")
    p.add_argument("--force", action="store_true", help="replace --html even if it is not a page of this command")
    a = p.parse_args(argv)
    methods = [a.method] if a.method else (list(METHODS) if a.html else ["rollout"])

    def fail(where: str, problem: str) -> int:
        print(f"error: {where}: {problem}", file=sys.stderr)
        return 2

    if a.steps < 1:
        return fail("--steps", f"must be at least 1, got {a.steps}")
    if not os.path.isfile(a.path):
        return fail("--path", f"{a.path}: no such checkpoint")
    if not os.path.isfile(os.path.join(a.data, "bin", "pipeline.txt")):
        return fail("--data", f"{a.data}: not the --out folder of scripts/prepare-imdb.sh (no bin/pipeline.txt)")
    from fairseq_vanilla.explain.page import TOOL
    from fairseq_vanilla.text.io import PipelineError
    from fairseq_vanilla.text.outputs import claim_output, html_made_by, output_file

    claim = dict(is_own=html_made_by(TOOL), force=a.force, flag="--html", reads=(a.path,))
    if a.html:
        try:
            claim_output(a.html, **claim)
        except PipelineError as e:
            return fail(*str(e).split(": ", 1))
    if any(m in ("gradient", "integrated-gradients") for m in methods):
        try:
            import captum  # noqa: F401
        except ImportError:
            return fail("--method", "gradient and integrated-gradients need Captum: pip install -e '.[explain]'")
    try:
        reviews = [line.rstrip("\n") for line in sys.stdin]
    except UnicodeDecodeError as e:
        return fail("stdin", f"not UTF-8 ({e.reason} at byte {e.start})")
    from fairseq_vanilla.text.imdb import clean_review

    for n, review in enumerate(reviews, 1):
        if not clean_review(review):
            return fail("stdin", f"line {n}: empty review")
    if not reviews:
        return fail("stdin", "no review (give one review a line)")

    from fairseq_vanilla.explain.explainer import ReviewExplainer
    from fairseq_vanilla.explain.page import render_page
    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError
    from fairseq_vanilla.inference.hub import checkpoint_task

    try:
        task = checkpoint_task(a.path)
        if task not in CLASSIFIER_TASKS:
            wanted = " or ".join(map(repr, CLASSIFIER_TASKS))
            return fail("--path", f"{a.path}: a checkpoint of task {task!r}, not a classifier's ({wanted})")
        explainer = ReviewExplainer.from_pretrained(a.path, a.data, a.steps)
    except (CheckpointError, OSError, ValueError, RuntimeError) as e:
        return fail("--path", f"{a.path}: {str(e).splitlines()[0]}")
    explanations = []
    for n, review in enumerate(reviews, 1):
        e = explainer.explain(review, methods)
        explanations.append(e)
        print(f"review {n}\t{e.label}\t{e.probability:.4f}")
        for method in methods:
            print("\t".join([method] + [f"{word} {score:.4g}" for word, score in e.ranked(method)]))
    if a.html:
        try:
            with output_file(a.html, **claim) as tmp, open(tmp, "w", encoding="utf-8") as f:
                f.write(render_page(explanations, methods))
        except PipelineError as e:
            return fail(*str(e).split(": ", 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
