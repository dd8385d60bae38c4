"""text_classification on your own labelled text: the TSV / folder reader, prepare-classification.sh, training and
validation through the stock fairseq binaries, and the report's per-class scores."""

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, USER_DIR, fairseq
from fairseq_vanilla.evaluation.classification import (
    accuracy,
    class_scores,
    confusion_matrix,
    macro_f1,
    markdown_scores,
)
from fairseq_vanilla.text.io import PipelineError
from fairseq_vanilla.text.labelled import labelled_extract, parse_tsv, read_labelled

PREPARE = ROOT / "scripts" / "prepare-classification.sh"
WORDS = {  # each label's texts use its own words among shared fillers
    "sport": "goal match team score referee striker".split(),
    "food": "soup bread cheese recipe oven spicy".split(),
    "tech": "laptop software chip server keyboard code".split(),
}
FILL = "the a today my new old big small really very".split()
TRAIN_FLAGS = (
    "--user-dir", USER_DIR, "--task", "text_classification", "--arch", "vanilla_transformer_classifier_tiny",
    "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64", "--encoder-layers", "1",
    "--criterion", "vanilla_label_smoothed_classification", "--optimizer", "adam", "--lr", "0.003",
    "--batch-size", "16", "--seed", "1", "--num-workers", "0", "--log-format", "simple", "--log-interval", "10",
    "--max-positions", "64", "--no-epoch-checkpoints", "--max-update", "60",
)  # fmt: skip


def run(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WORKERS": "1"}
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[:2]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def error_line(proc, *parts):
    """The command failed with one ``error: …`` line on stderr naming all ``parts``."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert all(str(p) in lines[0] for p in parts), lines[0]
    return lines[0]


# ---------------------------------------------------------------- scores


def test_scores_against_hand_computed_values():
    matrix = confusion_matrix([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 3)
    assert matrix == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert accuracy(matrix) == pytest.approx(4 / 6)
    got = class_scores(matrix)
    # class 0: 2 of 2 predicted right, 2 of 3 found: F1 = 2·1·⅔ / (1 + ⅔) = 0.8
    # class 1: 1 of 2 predicted (the other is a 0), 1 of 2 found: F1 0.5
    # class 2: 1 of 2 predicted (the other is a 1), 1 of 1 found: F1 = 2·½·1 / 1½ = ⅔
    assert [(s["precision"], s["recall"], s["support"]) for s in got] == [(1.0, 2 / 3, 3), (0.5, 0.5, 2), (0.5, 1.0, 1)]
    assert [s["f1"] for s in got] == pytest.approx([0.8, 0.5, 2 / 3])
    assert macro_f1(matrix) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    never = class_scores(confusion_matrix([0, 1], [0, 0], 3))  # class 1 never predicted, class 2 absent
    assert never[1] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1} and never[2]["support"] == 0
    lines = markdown_scores(["a", "b", "c"], matrix)
    assert lines[0] == "- accuracy 0.6667, macro F1 0.6556 on 6 examples"
    assert "| a | 1.0000 | 0.6667 | 0.8000 | 3 |" in lines and "| c | 0.5000 | 1.0000 | 0.6667 | 1 |" in lines
    assert lines[-3:] == ["| a | 2 | 1 | 0 |", "| b | 0 | 1 | 1 |", "| c | 0 | 0 | 1 |"]
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 0], 3)


# ---------------------------------------------------------------- the reader


def test_tsv_and_folders_are_read_into_labels_and_one_line_texts(tmp_path):
    assert parse_tsv(["pos\tA  fine\tfilm.<br />Yes\r\n", "   ", "neg \tBad.\n"], "f.tsv") == [
        ("pos", "A fine film. Yes"),  # white space and HTML line breaks made one space; blank lines skipped
        ("neg", "Bad."),
    ]
    for label, names in (("b", ["10.txt", "2.txt"]), ("a", ["x.txt"])):
        (tmp_path / "dir" / label).mkdir(parents=True)
        for name in names:
            (tmp_path / "dir" / label / name).write_text(f"{label} {name}\nsecond line\n")
    (tmp_path / "dir" / "a" / "notes.md").write_text("not an example")
    assert read_labelled(str(tmp_path / "dir"), "--train") == [
        ("a", "a x.txt second line"),
        ("b", "b 2.txt second line"),  # by label, then file name (2 before 10)
        ("b", "b 10.txt second line"),
    ]
    (tmp_path / "test.tsv").write_text("a\tone\n")  # a label with one example is fine
    counts = labelled_extract(
        {"train": str(tmp_path / "dir"), "valid": str(tmp_path / "test.tsv"), "test": str(tmp_path / "test.tsv")},
        str(tmp_path / "out"),
    )
    assert counts == {"train": 3, "valid": 1, "test": 1, "labels": "a,b"}
    assert (tmp_path / "out" / "train.label").read_text() == "a\nb\nb\n"
    assert (tmp_path / "out" / "test.txt").read_text() == "one\n"


@pytest.mark.parametrize(
    "content, problem",
    [
        ("a\tgood\nb good\n", "line 2: no tab (label<TAB>text)"),
        ("a\tgood\nb\t  \n", "line 2: empty text"),
        ("a\tgood\n\tgood\n", "line 2: empty label"),
        ("a\tgood\nvery bad\tgood\n", "line 2: label 'very bad' holds white space (a label is one token)"),
        ("a\tgood\n<unk>\tgood\n", "line 2: label '<unk>' is a symbol of fairseq's dictionaries"),
        (b"a\tgood\nb\tcaf\xe9\n", "not valid UTF-8 (byte 0xe9 at offset 12)"),
        ("", "no example (label<TAB>text lines)"),
    ],
)
def test_tsv_errors_name_the_file_and_line(tmp_path, content, problem):
    path = tmp_path / "train.tsv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PipelineError) as e:
        read_labelled(str(path), "--train")
    assert str(e.value) == f"{path}: {problem}"


def test_folder_and_label_set_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match=r"empty: no label subfolder"):
        read_labelled(str(tmp_path / "empty"), "--valid")
    (tmp_path / "f" / "pos").mkdir(parents=True)
    with pytest.raises(PipelineError, match=r"f/pos: holds no \.txt file"):
        read_labelled(str(tmp_path / "f"), "--valid")
    (tmp_path / "f" / "pos" / "1.txt").write_text(" \n")
    with pytest.raises(PipelineError, match=r"f/pos/1.txt: empty text"):
        read_labelled(str(tmp_path / "f"), "--valid")
    with pytest.raises(PipelineError, match=r"^--test .*nowhere: no such file or folder"):
        read_labelled(str(tmp_path / "nowhere"), "--test")
    one, two, three = (tmp_path / f"{n}.tsv" for n in ("one", "two", "three"))
    one.write_text("pos\tgood\npos\tfine\n")
    two.write_text("pos\tgood\nneg\tbad\n")
    three.write_text("pos\tgood\nneg\tbad\nmaybe\tso so\n")
    with pytest.raises(PipelineError, match=rf"^--train {one}: 1 label \(pos\); a classifier needs at least 2"):
        labelled_extract({"train": str(one), "valid": str(two), "test": str(two)}, str(tmp_path / "o"))
    with pytest.raises(PipelineError, match=rf"^--test {three}: label 'maybe' is not a training label \(neg, pos\)"):
        labelled_extract({"train": str(two), "valid": str(one), "test": str(three)}, str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_prepare_refuses_bad_input_in_one_line_and_keeps_what_it_did_not_make(tmp_path):
    good, bad = tmp_path / "good.tsv", tmp_path / "bad.tsv"
    good.write_text("a\tone\nb\ttwo\n")
    bad.write_text("a\tone\nb\ttwo\nc three\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = run("bash", PREPARE, "--train", bad, "--valid", good, "--test", good, "--out", out, check=False)
    error_line(proc, f"{bad}: line 3: no tab")
    assert (out / "notes.txt").read_text() == "mine" and not (out / "raw").exists()
    proc = run("bash", PREPARE, "--train", good, "--valid", good, "--out", out, check=False)
    assert proc.returncode == 2 and error_line(proc, "--test: required")
    proc = run(
        "bash",
        PREPARE,
        "--train",
        good,
        "--valid",
        good,
        "--test",
        tmp_path / "x",
        "--out",
        tmp_path / "new",
        check=False,
    )
    assert proc.returncode == 2 and error_line(proc, f"--test {tmp_path / 'x'}: no such file or folder")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- prepare → train → validate → report


def toy_text(rng: random.Random, label: str) -> str:
    """5–14 words: fillers and the label's own words (twice as likely), capitalised, with a full stop."""
    return " ".join(rng.choice(FILL + 2 * WORDS[label]) for _ in range(rng.randint(5, 14))).capitalize() + "."


def toy_corpus(base: Path) -> dict:
    """3 labels × (100 train, 15 valid, 20 test) short texts; train and test as TSV, valid as label folders."""
    rng = random.Random(0)
    paths = {}
    for split, n in (("train", 100), ("valid", 15), ("test", 20)):
        rows = [(label, toy_text(rng, label)) for label in WORDS for _ in range(n)]
        rng.shuffle(rows)
        if split == "valid":
            for i, (label, text) in enumerate(rows):
                (base / "valid" / label).mkdir(parents=True, exist_ok=True)
                (base / "valid" / label / f"{i}.txt").write_text(text + "\n")
            paths[split] = base / "valid"
        else:
            paths[split] = base / f"{split}.tsv"
            paths[split].write_text("".join(f"{label}\t{text}\n" for label, text in rows))
    return paths


def test_three_classes_prepared_trained_validated_and_reported(tmp_path):
    paths = toy_corpus(tmp_path)
    prep = tmp_path / "prep"
    args = ["--train", paths["train"], "--valid", paths["valid"], "--test", paths["test"], "--out", prep]
    run("bash", PREPARE, *args, "--bpe-ops", "50", "--lower")
    labels = [line.split()[0] for line in (prep / "bin" / "label" / "dict.txt").read_text().splitlines()]
    assert sorted(labels) == ["food", "sport", "tech"]
    assert (prep / "raw" / "valid.label").read_text().split().count("tech") == 15
    again = run("bash", PREPARE, *args, "--bpe-ops", "50", "--lower")
    assert again.stdout.count("done already") == 4  # every stage made the same way: skipped

    save = tmp_path / "ckpt"
    train = fairseq("fairseq-train", prep / "bin", *TRAIN_FLAGS, "--save-dir", save)
    (save / "train.log").write_text(train.stdout + train.stderr)
    test = fairseq(
        "fairseq-validate", prep / "bin", "--user-dir", USER_DIR, "--task", "text_classification",
        "--path", save / "checkpoint_best.pt", "--valid-subset", "test", "--batch-size", "64",
    )  # fmt: skip
    (save / "test.log").write_text(test.stdout + test.stderr)
    line = next(x for x in (test.stdout + test.stderr).splitlines() if "valid on 'test' subset" in x)
    assert "examples 60" in line and float(re.search(r"accuracy ([0-9.]+)", line).group(1)) > 0.9

    run(sys.executable, ROOT / "scripts" / "report.py", "--save", save, "--data", prep, "--out", tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    validated = float(re.search(r"accuracy ([0-9.]+)", line).group(1))
    assert f"- accuracy {validated:.4f}, macro F1 " in report  # recomputed from the predictions: fairseq's number
    for label in WORDS:
        row = re.search(rf"^\| {label} \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| 20 \|$", report, re.M)
        assert row and float(row.group(3)) > 0.8  # per-class F1
    matrix = [r for r in report.splitlines() if re.match(r"^\| (food|sport|tech) \| \d+ \| \d+ \| \d+ \|$", r)]
    assert [sum(map(int, r.strip("| ").split(" | ")[1:])) for r in matrix] == [20, 20, 20]
