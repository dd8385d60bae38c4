#!/usr/bin/env python3
"""Classify raw texts with a trained vanilla_transformer_classifier: one text a line in, 'label<TAB>prob' out.

    python scripts/predict-imdb.py --path CKPT --data PREPARED_DIR [FILE ...]   (no FILE: standard input)
PREPARED_DIR is the --out folder of scripts/prepare-imdb.sh or prepare-classification.sh (its BPE codes or
sentencepiece model and dictionaries).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CLASSIFIER_TASKS = ("imdb_classification", "text_classification")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", required=True, help="checkpoint (.pt)")
    p.add_argument("--data", required=True, help="the --out folder of prepare-imdb.sh or prepare-classification.sh")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("files", nargs="*")
    a = p.parse_args()
    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError
    from fairseq_vanilla.inference.hub import ReviewClassifier, checkpoint_task

    try:
        task = checkpoint_task(a.path)
        if task not in CLASSIFIER_TASKS:
            raise ValueError(
                f"--path {a.path}: a checkpoint of task {task!r}, not {' or '.join(map(repr, CLASSIFIER_TASKS))}: "
                "give a classifier (translation checkpoints go to scripts/generate.sh or translate.py)"
            )
        if not os.path.isfile(os.path.join(a.data, "bin", "label", "dict.txt")):
            raise ValueError(
                f"--data {a.data}: not a prepare-imdb.sh or prepare-classification.sh --out folder "
                "(no bin/label/dict.txt)"
            )
        clf = ReviewClassifier.from_pretrained(a.path, a.data)
        lines = []
        for path in a.files or ["-"]:
            f = sys.stdin if path == "-" else open(path, encoding="utf-8")
            lines += [line.rstrip("\n") for line in f]
        for i in range(0, len(lines), a.batch_size):
            for label, prob in clf.predict_batch(lines[i : i + a.batch_size]):
                print(f"{label}\t{prob:.4f}")
    except (CheckpointError, OSError, ValueError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
