#!/usr/bin/env python3
"""Draw attention heatmaps (PNG, one panel per head) of a trained model on one sentence or review.

Translation model: encoder self-attention, decoder self-attention and encoder-decoder attention of --layer, on the
beam-search translation of --sentence (or on --target, teacher-forced). Classifier: the encoder's self-attention
over --review. --data is the --out folder of the prepare script the model was trained on (its tokenisation and BPE
are repeated). The weights go to OUT/attention.pt too (torch.save of {name: (weights, rows, cols)}). --out is a new
folder, an empty one, or one this command wrote before (only its files replaced); any other needs --force, and never
one holding --path or --data. A refused --out: one line, exit status 2; a model or text that does not fit: exit 1.

  python scripts/plot-attention.py --path runs/m30/checkpoint_best.pt --data runs/multi30k \\
      --sentence "A man in an orange hat starring at something." --out runs/attention
  python scripts/plot-attention.py --path runs/imdb_cpu/ckpt/checkpoint_best.pt --data runs/imdb \\
      --review "A wonderful film, superb acting." --out runs/attention-imdb
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOOL = "plot-attention"  # the owner named in --out's marker


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", required=True, help="checkpoint (.pt)")
    p.add_argument("--data", required=True, help="--out folder of the prepare script the model was trained on")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--sentence", help="source sentence (raw text), for a translation model")
    what.add_argument("--review", help="review (raw text), for a classifier")
    p.add_argument("--target", help="translation to teacher-force instead of the beam-search output (raw text)")
    p.add_argument("--layer", type=int, default=-1, help="layer to draw, 0-based; -1 = last (default)")
    p.add_argument("--beam", type=int, default=5, help="beam size for the translation (default 5)")
    p.add_argument("--out", required=True, help="folder for the PNGs and attention.pt")
    p.add_argument("--force", action="store_true", help="write into --out even if this command did not make it")
    a = p.parse_args(argv)

    import torch

    from fairseq_vanilla.evaluation.attention_maps import classifier_attention, plot_heads, translation_attention
    from fairseq_vanilla.inference.hub import ReviewClassifier, load_translator
    from fairseq_vanilla.tasks.text_classification import TextClassificationTask
    from fairseq_vanilla.text.io import PipelineError
    from fairseq_vanilla.text.output_dirs import check_output_dir, output_dir

    claim = dict(force=a.force, flag="--out", reads=(a.path, a.data))
    try:
        check_output_dir(a.out, TOOL, **claim)  # before the model runs; again when written
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if a.review is not None:
            if a.target is not None:
                raise ValueError("--target is for translation models (--sentence), not with --review")
            maps = classifier_attention(ReviewClassifier.from_pretrained(a.path, a.data), a.review, a.layer)
        else:
            hub = load_translator(a.path, a.data)
            if isinstance(hub.task, TextClassificationTask):
                raise ValueError(f"{a.path} is a classifier: give --review, not --sentence")
            maps = translation_attention(hub, a.sentence, a.target, a.layer, a.beam)
    except (ValueError, FileNotFoundError, PipelineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    layer = "last layer" if a.layer == -1 else f"layer {a.layer}"
    try:  # only what this command made in --out is replaced (text.output_dirs.output_dir)
        with output_dir(a.out, TOOL, **claim) as tmp:
            for name, (weights, rows, cols) in maps.items():
                plot_heads(weights, rows, cols, f"{name.replace('_', ' ')} ({layer})", os.path.join(tmp, f"{name}.png"))
            torch.save(maps, os.path.join(tmp, "attention.pt"))
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name in maps:
        print(os.path.join(a.out, f"{name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
