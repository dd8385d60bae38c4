#!/usr/bin/env python3
"""One Markdown page about a training run: the exact command, loss and learning-rate curves (PNG), the score
(BLEU of scripts/generate.sh, or a classifier's test accuracy, with --data its per-class precision / recall / F1 and
confusion matrix on a split) and a few example outputs.

  python scripts/report.py --save runs/m30/vanilla_transformer --generate runs/m30/vanilla_transformer/test
  python scripts/report.py --save runs/imdb_cpu/ckpt --data runs/imdb      # IMDB: accuracy from SAVE/test.log
  python scripts/report.py --save runs/mine/ckpt --data runs/mine --subset valid  # any text_classification run

--save is the --save folder of scripts/train.sh or train-imdb.sh (train.log, command.sh, and test.log for IMDB).
Writes OUT/report.md (default SAVE/report/report.md) with loss.png and lr.png beside it. OUT is a new folder, an
empty one, or one this command wrote before (only its files replaced); any other needs --force, and never one holding
SAVE, --generate or --data. A refused OUT: one line, exit status 2; a run or output that cannot be read: exit 1.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOOL = "report"  # the owner named in OUT's marker
INNER = re.compile(r"\| train_inner \| .*")
VALID = re.compile(r"\| valid \| epoch \d+ \| valid on '(\w+)' subset \| (.*)")
FIELD = re.compile(r"(\w+)[=\s]([-0-9.e+]+)(?:,|\s*\||$)")


def parse_fields(text: str) -> dict:
    """``loss=3.1, lr=0.0005`` or ``loss 3.1 | lr 0.0005`` → {name: float}."""
    return {m.group(1): float(m.group(2)) for m in FIELD.finditer(text)}


def parse_train_log(path: str):
    """(train points, valid points): lists of dicts with num_updates and the logged values, in log order."""
    train, valid = [], []
    if not os.path.isfile(path):
        raise ValueError(
            f"{path}: missing; scripts/train.sh, train-imdb.sh and run-demo.sh write it in the run's folder"
        )
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = INNER.search(line)
            if m:
                train.append(parse_fields(m.group(0).split(":", 1)[-1]))
                continue
            m = VALID.search(line)
            if m and m.group(1) == "valid":
                valid.append(parse_fields(m.group(2)))
    if not train and not valid:
        raise ValueError(f"{path}: no train_inner or valid lines (is it a fairseq-train log with --log-format simple?)")
    return train, valid


PLOTS = {"loss": "loss.png", "lr": "lr.png"}  # file names of the curves in OUT


def plot_curves(train, valid, out_dir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for points, label in ((train, "train (per log interval)"), (valid, "valid")):
        pts = [(p["num_updates"], p["loss"]) for p in points if "num_updates" in p and "loss" in p]
        if pts:
            ax.plot(*zip(*pts), marker="o" if label == "valid" else None, markersize=3, label=label)
    ax.set_xlabel("updates")
    ax.set_ylabel("loss (bits)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, PLOTS["loss"]), dpi=100)
    plt.close(fig)
    pts = [(p["num_updates"], p["lr"]) for p in train if "num_updates" in p and "lr" in p]
    fig, ax = plt.subplots(figsize=(6, 3.0))
    if pts:
        ax.plot(*zip(*pts))
    ax.set_xlabel("updates")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, PLOTS["lr"]), dpi=100)
    plt.close(fig)


def translation_section(gen_dir: str, n_examples: int):
    bleu = os.path.join(gen_dir, "bleu.txt")
    if not os.path.isfile(bleu):
        raise ValueError(f"{bleu}: missing; --generate must be the --out folder of scripts/generate.sh")
    lines = ["## BLEU", "", *[f"- {line}" for line in open(bleu, encoding="utf-8").read().splitlines()], ""]
    src, ref, hyp = {}, {}, {}
    with open(os.path.join(gen_dir, "gen.out"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([STD])-(\d+)\t(.*)$", line.rstrip("\n"))
            if m:
                kind, i, text = m.group(1), int(m.group(2)), m.group(3)
                table = {"S": src, "T": ref}.get(kind)
                if kind == "D":
                    hyp.setdefault(i, text.split("\t", 1)[-1])
                elif table is not None:
                    table.setdefault(i, text)
    lines += [
        "## Examples (first sentences of the split, Moses-tokenised, BPE removed)",
        "",
        "| # | source | reference | translation |",
        "| --- | --- | --- | --- |",
    ]
    for i in sorted(hyp)[:n_examples]:
        cells = [src.get(i, ""), ref.get(i, ""), hyp[i]]
        lines.append(f"| {i} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines + [""]


def classification_section(save: str, data: str, n_examples: int, subset: str = "test"):
    test_log = os.path.join(save, "test.log")
    if not os.path.isfile(test_log):
        raise ValueError(f"{test_log}: missing (scripts/train-imdb.sh writes it after training)")
    m = None
    for line in open(test_log, encoding="utf-8"):
        m = re.search(r"valid on 'test' subset \| (.*)", line) or m
    if m is None:
        raise ValueError(f"{test_log}: no \"valid on 'test' subset\" line")
    scores = parse_fields(m.group(1))
    checkpoint = os.path.join(save, "checkpoint_best.pt")
    noun = "text"  # what an example is called: IMDB's are reviews
    if os.path.isfile(checkpoint):
        from fairseq_vanilla.inference.hub import checkpoint_task

        noun = "review" if checkpoint_task(checkpoint) == "imdb_classification" else noun
    lines = [
        "## Test accuracy",
        "",
        f"- accuracy {scores.get('accuracy', float('nan')):.4f} on "
        f"{int(scores.get('examples', 0))} test {noun}s (fairseq-validate --valid-subset test)",
        "",
    ]
    if data:
        from fairseq_vanilla.evaluation.classification import confusion_matrix, markdown_scores
        from fairseq_vanilla.inference.hub import ReviewClassifier
        from fairseq_vanilla.inference.split_predictions import ALPHABET, predict_split

        record = predict_split(checkpoint, os.path.join(data, "bin"), subset)
        true, predicted = ([ALPHABET.index(c) for c in record[k]] for k in ("true", "predicted"))
        lines += [f"## Per-class scores on {subset} (checkpoint_best.pt)", ""]
        lines += markdown_scores(record["classes"], confusion_matrix(true, predicted, len(record["classes"]))) + [""]

        texts = open(os.path.join(data, "raw", "test.txt"), encoding="utf-8").read().splitlines()[:n_examples]
        gold = open(os.path.join(data, "raw", "test.label"), encoding="utf-8").read().split()[:n_examples]
        clf = ReviewClassifier.from_pretrained(checkpoint, data)
        lines += [
            f"## Examples (first test {noun}s)",
            "",
            f"| # | {noun} | gold | predicted (probability) |",
            "| --- | --- | --- | --- |",
        ]
        for i, (text, label, (pred, prob)) in enumerate(zip(texts, gold, clf.predict_batch(texts))):
            short = text if len(text) <= 160 else text[:157] + "…"
            lines.append(f"| {i} | {short.replace('|', '/')} | {label} | {pred} ({prob:.2f}) |")
    return lines + [""]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--save", required=True, help="the run's --save folder (train.log, command.sh)")
    p.add_argument("--generate", help="translation: the --out folder of scripts/generate.sh (bleu.txt, gen.out)")
    p.add_argument(
        "--data", help="classifier: the prepared folder, for per-class scores and predictions on the first test texts"
    )
    p.add_argument("--subset", default="test", help="classifier: the split of the per-class scores (default test)")
    p.add_argument("--examples", type=int, default=5, help="number of example outputs (default 5)")
    p.add_argument("--out", help="report folder (default SAVE/report)")
    p.add_argument("--force", action="store_true", help="write into --out even if this command did not make it")
    a = p.parse_args(argv)
    out = a.out or os.path.join(a.save, "report")
    from fairseq_vanilla.text.io import PipelineError
    from fairseq_vanilla.text.output_dirs import check_output_dir, output_dir

    claim = dict(force=a.force, flag="--out", reads=(a.save, a.generate, a.data))
    try:
        check_output_dir(out, TOOL, **claim)  # before any model is loaded; again when the folder is written
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        train, valid = parse_train_log(os.path.join(a.save, "train.log"))
        command_file = os.path.join(a.save, "command.sh")
        command = (
            open(command_file, encoding="utf-8").read().strip()
            if os.path.isfile(command_file)
            else "(not recorded: SAVE/command.sh is written by scripts/train.sh, train-imdb.sh and run-demo.sh)"
        )
        last_valid = valid[-1] if valid else {}
        lines = [
            f"# Run report: {os.path.basename(os.path.abspath(a.save))}",
            "",
            "## Command",
            "",
            "```",
            command,
            "```",
            "",
            "## Training",
            "",
            f"- updates: {int(train[-1].get('num_updates', 0)) if train else int(last_valid.get('num_updates', 0))}",
            f"- last valid loss: {last_valid.get('loss', float('nan')):.3f} bits"
            + (f", nll {last_valid['nll_loss']:.3f}" if "nll_loss" in last_valid else "")
            + (f", accuracy {last_valid['accuracy']:.4f}" if "accuracy" in last_valid else ""),
            "",
            f"![loss]({PLOTS['loss']})",
            "",
            f"![learning rate]({PLOTS['lr']})",
            "",
        ]
        if a.generate:
            lines += translation_section(a.generate, a.examples)
        else:
            lines += classification_section(a.save, a.data, a.examples, a.subset)
    except (ValueError, FileNotFoundError, PipelineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        with output_dir(out, TOOL, **claim) as tmp:  # only what this command made in OUT is replaced
            plot_curves(train, valid, tmp)
            with open(os.path.join(tmp, "report.md"), "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(os.path.join(out, "report.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
