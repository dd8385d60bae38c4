"""prepare-imdb.sh, the imdb_classification task, the classifier, its criterion and prediction."""

import json
import math
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from conftest import ROOT, USER_DIR, fairseq, validate_classifier
from data import data_dir
from fairseq_vanilla.tasks.review_dataset import (
    ReviewClassificationDataset,
    split_words,
    truncate,
    word_boundaries,
)
from fairseq_vanilla.text.augmentation import random_deletion, random_swap

PREPARE = ROOT / "scripts" / "prepare-imdb.sh"
TRAIN_FLAGS = (
    "--user-dir",
    USER_DIR,
    "--task",
    "imdb_classification",
    "--arch",
    "vanilla_transformer_classifier_tiny",
    "--encoder-embed-dim",
    "32",
    "--encoder-ffn-embed-dim",
    "64",
    "--encoder-layers",
    "1",
    "--criterion",
    "vanilla_label_smoothed_classification",
    "--optimizer",
    "adam",
    "--lr",
    "0.003",
    "--batch-size",
    "16",
    "--seed",
    "1",
    "--num-workers",
    "0",
    "--log-format",
    "simple",
    "--log-interval",
    "10",
    "--max-positions",
    "64",
    "--no-epoch-checkpoints",
)


def run(*args, check=True):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[:2]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


# ---------------------------------------------------------------- pure functions


def test_truncation_keeps_head_tail_or_both():
    t = torch.arange(10)
    assert truncate(t, 8, "head").tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert truncate(t, 8, "tail").tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert truncate(t, 8, "head_tail").tolist() == [0, 1, 4, 5, 6, 7, 8, 9]  # ⌊8/4⌋ = 2 first, 6 last
    assert truncate(t, 12, "head_tail").tolist() == list(range(10))


def test_words_are_regrouped_from_bpe_and_sentencepiece_pieces():
    d = Dictionary()
    ids = {s: d.add_symbol(s) for s in ("un@@", "believ@@", "able", "film", "\u2581un", "believable", "\u2581film")}
    bpe = np.array([ids["un@@"], ids["believ@@"], ids["able"], ids["film"]])
    words = split_words(bpe, **word_boundaries(d))
    assert [w.tolist() for w in words] == [[ids["un@@"], ids["believ@@"], ids["able"]], [ids["film"]]]
    d2 = Dictionary()
    ids2 = {s: d2.add_symbol(s) for s in ("\u2581un", "believable", "\u2581film")}
    spm = np.array([ids2["\u2581un"], ids2["believable"], ids2["\u2581film"]])
    assert [len(w) for w in split_words(spm, **word_boundaries(d2))] == [2, 1]


def test_augmentation_is_seeded_and_keeps_words():
    words = [f"w{i}" for i in range(20)]
    a = random_swap(words, 0.2, np.random.default_rng(3))
    assert a == random_swap(words, 0.2, np.random.default_rng(3))
    assert sorted(a) == sorted(words) and a != words  # 4 swaps: same multiset, new order
    d = random_deletion(words, 0.5, np.random.default_rng(3))
    assert d == random_deletion(words, 0.5, np.random.default_rng(3))
    assert 0 < len(d) < len(words) and [w for w in words if w in d] == d  # order kept, only deletions
    assert len(random_deletion(["only"], 0.9, np.random.default_rng(0))) == 1
    assert len(random_deletion(words, 0.999, np.random.default_rng(0))) >= 1
    with pytest.raises(ValueError, match="must be in"):
        random_swap(words, 1.5, np.random.default_rng(0))


class _Reviews:
    """An in-memory stand-in for fairseq's indexed dataset: items end with </s>, sizes count it."""

    def __init__(self, items):
        self.items = [torch.tensor(i) for i in items]
        self.sizes = np.array([len(i) for i in self.items])

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


def _dataset(deletion=0.0, swap=0.0, left_pad=False, max_positions=64):
    d = Dictionary()
    words = [d.add_symbol(f"w{i}") for i in range(30)]
    reviews = _Reviews([words[:25] + [d.eos()], words[5:8] + [d.eos()]])
    return d, ReviewClassificationDataset(
        reviews, torch.tensor([1, 0]), d, max_positions, "head", left_pad, deletion=deletion, swap=swap, seed=5
    )


def test_dataset_augmentation_depends_on_seed_epoch_and_review_only_and_keeps_labels():
    d, ds = _dataset(deletion=0.2, swap=0.2)
    first = ds[0]
    assert torch.equal(first["source"], ds[0]["source"])  # same seed, epoch, review → same sample
    assert first["target"].item() == 1 and ds[1]["target"].item() == 0
    assert first["source"][0] == d.bos() and first["source"][-1] == d.eos()
    ds.set_epoch(2)
    assert not torch.equal(first["source"], ds[0]["source"])  # a new epoch → a new augmentation
    _, again = _dataset(deletion=0.2, swap=0.2)
    again.set_epoch(2)
    assert torch.equal(again[0]["source"], ds[0]["source"])
    _, plain = _dataset()
    assert plain[0]["source"].tolist() == [d.bos()] + list(range(d.nspecial, d.nspecial + 25)) + [d.eos()]


def test_collater_pads_on_the_chosen_side():
    d, right = _dataset(max_positions=10)
    batch = right.collater([right[0], right[1]])
    assert batch["net_input"]["src_tokens"].shape == (2, 10)  # truncated to --max-positions
    assert batch["net_input"]["src_tokens"][1].tolist()[-5:] == [d.pad()] * 5
    assert batch["target"].tolist() == [1, 0] and batch["ntokens"] == 10 + 5
    _, left = _dataset(max_positions=10, left_pad=True)
    row = left.collater([left[0], left[1]])["net_input"]["src_tokens"][1].tolist()
    assert row[:5] == [d.pad()] * 5 and row[5] == d.bos()


def test_classifier_output_does_not_depend_on_padding_side():
    from fairseq_vanilla.models.vanilla_transformer import VanillaTransformerEncoder
    from fairseq_vanilla.models.vanilla_transformer_classifier import VanillaTransformerClassifier
    from fairseq_vanilla.modules import SideSizes, TokenEmbedding

    torch.manual_seed(0)
    d, right = _dataset(max_positions=10)
    _, left = _dataset(max_positions=10, left_pad=True)
    for pooling in ("first", "mean"):
        sizes = SideSizes(N=2, d_model=16, d_ff=32, h=2, P_drop=0.1)
        enc = VanillaTransformerEncoder(d, TokenEmbedding(len(d), 16, d.pad()), sizes, "sinusoidal", 64)
        model = VanillaTransformerClassifier(enc, 2, pooling, 0.1).eval()
        a = model(right.collater([right[0], right[1]])["net_input"]["src_tokens"])
        b = model(left.collater([left[0], left[1]])["net_input"]["src_tokens"])
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_classification_criterion_against_hand_computed_values():
    from fairseq_vanilla.criterions.label_smoothed_classification import VanillaLabelSmoothedClassificationCriterion

    class Model(torch.nn.Module):
        def forward(self, src_tokens, src_lengths=None):
            return torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # p = (0.75, 0.25) and (0.5, 0.5)

    class Task:
        target_dictionary = Dictionary()

    crit = VanillaLabelSmoothedClassificationCriterion(Task(), label_smoothing=0.2)
    sample = {"net_input": {"src_tokens": torch.zeros(2, 3).long()}, "target": torch.tensor([0, 1]), "ntokens": 6}
    loss, n, log = crit(Model(), sample)
    # example 1: q = (0.9, 0.1): -(0.9 log .75 + 0.1 log .25); example 2: -log .5
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25)) - math.log(0.5)
    assert n == 2 and abs(loss.item() - expected) < 1e-6
    assert abs(log["nll_loss"].item() - (-math.log(0.75) - math.log(0.5))) < 1e-6
    assert log["ncorrect"] == 1  # argmax 0 (right) and a tie resolved to 0 (wrong)


# ---------------------------------------------------------------- synthetic aclImdb folders, through the scripts

GOOD = "great wonderful superb moving brilliant".split()
BAD = "awful boring dull terrible weak".split()
FILL = "the film plot actors story scenes music director".split()


def make_aclimdb(root: Path, n_train=(70, 40), n_test=(21, 20), seed=0) -> Path:
    """A tiny aclImdb folder: pos reviews use GOOD words, neg ones BAD words; pos is the more frequent label."""
    rng = random.Random(seed)
    for split, (n_pos, n_neg) in (("train", n_train), ("test", n_test)):
        for label, n, words in (("pos", n_pos, GOOD), ("neg", n_neg, BAD)):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                text = " ".join(rng.choice(FILL + words) for _ in range(rng.randint(8, 30)))
                (folder / f"{i}_{7 if label == 'pos' else 2}.txt").write_text(
                    f"{text}.<br /><br />{rng.choice(words)}!"
                )
    return root / "aclImdb"


@pytest.fixture(scope="module")
def synthetic_prepared(tmp_path_factory):
    base = tmp_path_factory.mktemp("imdb_syn")
    make_aclimdb(base / "src")
    run("bash", PREPARE, "--from", base / "src", "--out", base / "prep", "--bpe-ops", "40", "--valid-size", "10")
    return base / "prep"


@pytest.fixture(scope="module")
def synthetic_model(synthetic_prepared, tmp_path_factory):
    save = tmp_path_factory.mktemp("imdb_ckpt")
    fairseq("fairseq-train", synthetic_prepared / "bin", *TRAIN_FLAGS, "--max-update", "60", "--save-dir", save)
    return save / "checkpoint_last.pt"


def test_prepare_imdb_layout_and_label_dictionary(synthetic_prepared):
    bin_ = synthetic_prepared / "bin"
    for part in ("input0", "label"):
        for split in ("train", "valid", "test"):
            assert (bin_ / part / f"{split}.idx").is_file()
    labels = [line.split()[0] for line in (bin_ / "label" / "dict.txt").read_text().splitlines()]
    assert labels == ["pos", "neg"]  # by frequency, no madeupword fillers: index 0 is pos here
    assert (synthetic_prepared / "raw" / "valid.label").read_text().split().count("pos") == 5
    assert len((synthetic_prepared / "raw" / "test.txt").read_text().splitlines()) == 41
    assert "<br" not in (synthetic_prepared / "raw" / "train.txt").read_text()


def test_train_validate_and_predict_map_labels_through_the_dictionary(synthetic_prepared, synthetic_model):
    examples, accuracy = validate_classifier(
        synthetic_prepared / "bin", synthetic_model, "--batch-size", "8", "--max-positions", "64"
    )
    assert examples == 41  # every test review (41 is not a multiple of 8)
    assert accuracy >= 0.9  # the words give the label away
    reviews = synthetic_prepared / "reviews.txt"
    reviews.write_text("A great, wonderful and superb film.<br />Brilliant!\nAwful. Boring, dull and terrible.\n")
    proc = run(
        sys.executable,
        ROOT / "scripts" / "predict-imdb.py",
        "--path",
        synthetic_model,
        "--data",
        synthetic_prepared,
        reviews,
    )
    got = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [g[0] for g in got] == ["pos", "neg"]
    assert all(0.5 < float(g[1]) <= 1.0 for g in got)


def test_split_predictions_recompute_fairseq_validate_accuracy(synthetic_prepared, synthetic_model, tmp_path):
    """Each test review's predicted and true class, in the split's order: the true classes are the raw labels, and
    the accuracy recomputed from them is fairseq-validate's."""
    from fairseq_vanilla.inference.split_predictions import RECORD_KEYS, accuracy, encode_classes

    assert encode_classes([0, 1, 1]) == "011" and accuracy({"predicted": "0110", "true": "0100"}) == 0.75
    out = tmp_path / "test_predictions.json"
    module = "fairseq_vanilla.inference.split_predictions"
    args = ("--path", synthetic_model, "--data", synthetic_prepared / "bin", "--batch-size", "8", "--out", out)
    proc = run(sys.executable, "-m", module, *args)
    record = json.loads(out.read_text())
    raw_labels = (synthetic_prepared / "raw" / "test.label").read_text().split()
    assert [record["classes"][int(c)] for c in record["true"]] == raw_labels and len(raw_labels) == 41
    _, printed = validate_classifier(synthetic_prepared / "bin", synthetic_model, "--batch-size", "16")
    assert abs(accuracy(record) - printed) <= 5e-5 and f"accuracy {accuracy(record):.4f}" in proc.stdout
    assert tuple(record) == RECORD_KEYS
    run(sys.executable, "-m", module, *args)  # its own earlier output is rewritten
    assert json.loads(out.read_text()) == record
    before = synthetic_model.read_bytes()  # but never a file it reads, nor one it did not write
    for target in (synthetic_model, synthetic_prepared / "raw" / "test.label"):
        refused = run(sys.executable, "-m", module, *args[:-1], target, check=False)
        assert refused.returncode == 1 and refused.stderr.startswith(f"error: --out {target}: ")
    assert (
        synthetic_model.read_bytes() == before
        and len((synthetic_prepared / "raw" / "test.label").read_text().split()) == 41
    )


def test_task_errors_name_the_problem(synthetic_prepared, tmp_path):
    from fairseq_vanilla.tasks.imdb_classification import (
        ClassificationDataError,
        ImdbClassificationConfig,
        ImdbClassificationTask,
    )

    bin_ = synthetic_prepared / "bin"
    task = ImdbClassificationTask.setup_task(ImdbClassificationConfig(data=str(bin_), seed=1))
    with pytest.raises(FileNotFoundError, match=r"test7.*missing"):
        task.load_dataset("test7")
    # a label the training data never had: fairseq-preprocess maps it to <unk>; the task names it
    bad = tmp_path / "bad"
    for part in ("input0", "label"):
        (bad / part).mkdir(parents=True)
        (bad / part / "dict.txt").write_text((bin_ / part / "dict.txt").read_text())
    (tmp_path / "t.label").write_text("pos\nmaybe\n")
    (tmp_path / "t.txt").write_text("great film\nfilm\n")
    for part, ext in (("input0", "txt"), ("label", "label")):
        fairseq(
            "fairseq-preprocess",
            "--only-source",
            "--testpref",
            tmp_path / f"t.{ext}",
            "--srcdict",
            bad / part / "dict.txt",
            "--destdir",
            tmp_path / f"b_{part}",
            "--workers",
            "1",
        )
        for f in (tmp_path / f"b_{part}").glob("test.*"):
            f.rename(bad / part / f.name)
    task = ImdbClassificationTask.setup_task(ImdbClassificationConfig(data=str(bad), seed=1))
    with pytest.raises(ClassificationDataError, match=r"example 2: unknown label '<unk>' \(known: pos, neg\)"):
        task.load_dataset("test")
    with pytest.raises(FileNotFoundError, match="dict.txt: missing"):
        ImdbClassificationTask.setup_task(ImdbClassificationConfig(data=str(tmp_path), seed=1))
    with pytest.raises(ValueError, match="--random-swap must be in"):
        ImdbClassificationTask.setup_task(ImdbClassificationConfig(data=str(bin_), random_swap=1.0, seed=1))


def test_prepare_imdb_refuses_bad_input_with_the_file_named(tmp_path):
    src = make_aclimdb(tmp_path / "a", n_train=(3, 3), n_test=(2, 2))
    for f in (src / "test" / "neg").iterdir():
        f.unlink()
    proc = run("bash", PREPARE, "--from", src, "--out", tmp_path / "o1", check=False)
    assert proc.returncode != 0 and "aclImdb/test/neg/ is missing or holds no review" in proc.stderr
    assert not (tmp_path / "o1" / "raw").exists()  # nothing a re-run would trust
    src = make_aclimdb(tmp_path / "b", n_train=(3, 3), n_test=(2, 2))
    (src / "train" / "pos" / "0_7.txt").write_text("  <br /> ")
    proc = run("bash", PREPARE, "--from", src, "--out", tmp_path / "o2", check=False)
    assert proc.returncode != 0 and "aclImdb/train/pos/0_7.txt: empty review" in proc.stderr
    (src / "train" / "pos" / "0_7.txt").write_bytes(b"caf\xe9 film")
    proc = run("bash", PREPARE, "--from", src, "--out", tmp_path / "o3", check=False)
    assert proc.returncode != 0 and "0_7.txt: not valid UTF-8" in proc.stderr
    proc = run("bash", PREPARE, "--from", tmp_path / "nowhere", "--out", tmp_path / "o4", check=False)
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr


# ---------------------------------------------------------------- the real archive


def test_real_aclimdb_slice_end_to_end(tmp_path):
    """A few hundred reviews of the shared archive, repacked as an archive: prepare → train → validate on test."""
    archive = data_dir("imdb") / "aclImdb_v1_labeled.tar.gz"
    counts = {("train", "pos"): 150, ("train", "neg"): 150, ("test", "pos"): 51, ("test", "neg"): 50}
    small = tmp_path / "slice.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(small, "w:gz") as dst:
        for member in src:
            m = re.match(r"aclImdb/(train|test)/(pos|neg)/", member.name)
            if m and member.isfile() and counts[(m.group(1), m.group(2))] > 0:
                counts[(m.group(1), m.group(2))] -= 1
                dst.addfile(member, src.extractfile(member))
            if not any(counts.values()):
                break
    prep = tmp_path / "prep"
    run(
        "bash",
        PREPARE,
        "--from",
        small,
        "--out",
        prep,
        "--bpe-ops",
        "800",
        "--valid-size",
        "20",
        "--lower",
        "--augment",
    )
    assert len((prep / "aug" / "train.label").read_text().splitlines()) == 2 * 280  # Trans-2's doubled set
    save = tmp_path / "ckpt"
    fairseq(
        "fairseq-train",
        prep / "bin",
        *TRAIN_FLAGS,
        "--max-update",
        "20",
        "--save-dir",
        save,
        "--truncation",
        "head_tail",
        "--random-deletion",
        "0.1",
        "--random-swap",
        "0.1",
        "--left-pad",
    )
    examples, accuracy = validate_classifier(
        prep / "bin", save / "checkpoint_last.pt", "--batch-size", "16", "--max-positions", "64"
    )
    assert examples == 101 and 0.0 <= accuracy <= 1.0


def test_train_imdb_recipe_trains_and_reports_test_accuracy(synthetic_prepared, tmp_path):
    proc = run(
        "bash",
        ROOT / "scripts" / "train-imdb.sh",
        "--preset",
        "cpu",
        "--data",
        synthetic_prepared / "bin",
        "--save",
        tmp_path / "cpu",
        "--",
        "--max-update",
        "30",
        "--num-workers",
        "0",
        "--log-interval",
        "5",
    )
    line = next(line for line in proc.stdout.splitlines() if "valid on 'test' subset" in line)
    assert "examples 41" in line and float(re.search(r"accuracy ([0-9.]+)", line).group(1)) >= 0.0
    bad = run(
        "bash",
        ROOT / "scripts" / "train-imdb.sh",
        "--preset",
        "huge",
        "--data",
        synthetic_prepared / "bin",
        "--save",
        tmp_path / "x",
        check=False,
    )
    assert bad.returncode == 2 and "--preset must be cpu" in bad.stderr

    # the hydra config is the same recipe: the same losses, update by update
    hydra = fairseq(
        "fairseq-hydra-train",
        "--config-dir",
        ROOT / "examples" / "hydra",
        "--config-name",
        "imdb",
        f"common.user_dir={USER_DIR}",
        f"task.data={synthetic_prepared / 'bin'}",
        f"checkpoint.save_dir={tmp_path / 'hydra'}",
        "optimization.max_update=30",
        "common.log_interval=5",
        "dataset.num_workers=0",
        cwd=tmp_path,
    )
    losses = lambda text: re.findall(r"train_inner.*?\bloss=([0-9.]+)", text)  # noqa: E731
    assert len(losses(proc.stdout)) >= 3  # 5 epochs of the small synthetic set: about 20 updates
    assert losses(hydra.stdout + hydra.stderr) == losses(proc.stdout)

    # the run report: accuracy from test.log, the command, curves, predictions on the first test reviews
    report_dir = tmp_path / "report"
    run(
        sys.executable,
        ROOT / "scripts" / "report.py",
        "--save",
        tmp_path / "cpu",
        "--data",
        synthetic_prepared,
        "--out",
        report_dir,
        "--examples",
        "3",
    )
    report = (report_dir / "report.md").read_text()
    accuracy = float(re.search(r"accuracy ([0-9.]+)", line).group(1))
    assert f"accuracy {accuracy:.4f} on 41 test reviews" in report
    assert (tmp_path / "cpu" / "command.sh").read_text().strip() in report
    rows = [r for r in report.splitlines() if re.match(r"^\| \d+ \|", r)]
    gold = (synthetic_prepared / "raw" / "test.label").read_text().split()[:3]
    assert [r.split(" | ")[2] for r in rows] == gold
    assert (report_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_attention_of_the_classifier(synthetic_prepared, synthetic_model, tmp_path):
    review = "A great, wonderful and superb film.<br />Brilliant!"
    proc = run(
        sys.executable,
        ROOT / "scripts" / "plot-attention.py",
        "--path",
        synthetic_model,
        "--data",
        synthetic_prepared,
        "--review",
        review,
        "--out",
        tmp_path,
    )
    assert proc.stdout.split() == [str(tmp_path / "classifier_self_attention.png")]
    weights, rows, cols = torch.load(tmp_path / "attention.pt", weights_only=True)["classifier_self_attention"]
    assert rows == cols and rows[0] == "<s>" and rows[-1] == "</s>"
    assert weights.shape == (4, len(rows), len(rows))  # the tiny classifier's 4 heads, one layer
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    bad = run(
        sys.executable,
        ROOT / "scripts" / "plot-attention.py",
        "--path",
        synthetic_model,
        "--data",
        synthetic_prepared,
        "--sentence",
        "x",
        "--out",
        tmp_path / "bad",
        check=False,
    )
    assert bad.returncode == 1 and "is a classifier: give --review" in bad.stderr
