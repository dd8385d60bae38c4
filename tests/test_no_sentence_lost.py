"""Issue: fairseq drops the last batch when its size is not a multiple of --required-batch-size-multiple.
With the plugin loaded every example is generated, validated and trained on exactly once."""

import json
import re

import pytest

from conftest import USER_DIR, binarize, fairseq, write_parallel
from fairseq_vanilla.text.synthetic import generate

SIZES = {"test": 1, "test1": 7, "test2": 9, "test3": 461}


# upstream's batch_by_size vs ours: tests/test_fairseq_fixes.py


@pytest.fixture(scope="module")
def odd_splits(tiny_corpus, tmp_path_factory):
    """Splits of 1, 7, 9 and 461 pairs binarised with the tiny corpus's dictionary; valid = 9, train = 461."""
    raw = tmp_path_factory.mktemp("odd")
    pairs = generate(461 + 9 + 461 + 7 + 1, seed=99)
    write_parallel(raw, "train", pairs[:461])
    write_parallel(raw, "valid", pairs[461:470])
    start = 0
    for split, n in SIZES.items():
        write_parallel(raw, split, pairs[start : start + n])
        start += n
    return binarize(raw, raw / "bin", test_splits=list(SIZES), extra=("--srcdict", tiny_corpus / "dict.en.txt"))


@pytest.mark.parametrize("batching", [("--batch-size", "8"), ("--batch-size", "128"), ("--max-tokens", "150")])
def test_generate_translates_every_sentence_once(odd_splits, tiny_checkpoint, batching):
    for split, n in SIZES.items():
        out = fairseq(
            "fairseq-generate",
            odd_splits,
            "--user-dir",
            USER_DIR,
            "--path",
            tiny_checkpoint,
            "--gen-subset",
            split,
            "--beam",
            "1",
            "--max-len-b",
            "5",
            *batching,
        )
        ids = [int(i) for i in re.findall(r"^H-(\d+)\t", out.stdout, re.M)]
        assert sorted(ids) == list(range(n)), (split, batching, len(ids))


def dataset_target_tokens(folder, split):
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(str(folder / "dict.de.txt"))
    ds = data_utils.load_indexed_dataset(str(folder / f"{split}.en-de.de"), d)
    return int(ds.sizes.sum()), len(ds)


@pytest.mark.parametrize("batching", [("--batch-size", "128"), ("--max-tokens", "150")])
def test_validate_counts_every_target_token(odd_splits, tiny_checkpoint, batching):
    for split in ("valid", "test1", "test3"):
        out = fairseq(
            "fairseq-validate",
            odd_splits,
            "--user-dir",
            USER_DIR,
            "--task",
            "translation",
            "--path",
            tiny_checkpoint,
            "--valid-subset",
            split,
            *batching,
        )
        text = out.stdout + out.stderr
        wpb = float(re.search(r"valid on '%s' subset .*\| wpb ([0-9.]+)" % split, text).group(1))
        bsz = float(re.search(r"valid on '%s' subset .*\| bsz ([0-9.]+)" % split, text).group(1))
        tokens, sentences = dataset_target_tokens(odd_splits, split)
        assert (wpb, bsz) == (tokens, sentences), (split, batching)


def test_training_epoch_sees_every_example_once(odd_splits, tmp_path):
    from conftest import TINY_TRAIN_FLAGS

    flags = [f for f in TINY_TRAIN_FLAGS]
    flags[flags.index("--log-format") + 1] = "json"
    flags[flags.index("--log-interval") + 1] = "1"
    flags[flags.index("--max-tokens") + 1] = "100000"
    out = fairseq(
        "fairseq-train",
        odd_splits,
        "--user-dir",
        USER_DIR,
        *flags,
        "--batch-size",
        "16",
        "--max-epoch",
        "1",
        "--save-dir",
        tmp_path,
        "--no-save",
    )
    text = out.stdout + out.stderr
    seen = [json.loads(m.group(1)) for m in re.finditer(r"\| train_inner \| (\{.*\})", text)]
    sizes = [int(float(s["bsz"])) for s in seen]
    assert sum(sizes) == 461
    assert max(sizes) <= 16
    assert sum(n % 8 != 0 for n in sizes) <= 1  # only the tail batch may break the multiple of 8


def test_epoch_iterator_yields_each_example_exactly_once(odd_splits):
    """The iterator fairseq-train draws from, by example id: every one of 461 once, none twice."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [str(odd_splits), "--user-dir", USER_DIR, "--task", "translation", "--arch", "vanilla_transformer_tiny"]
    )
    task = tasks.setup_task(convert_namespace_to_omegaconf(args).task)
    task.load_dataset("train")
    for max_tokens, max_sentences in ((100000, 16), (150, None), (None, 7)):
        itr = task.get_batch_iterator(
            task.dataset("train"),
            max_tokens=max_tokens,
            max_sentences=max_sentences,
            required_batch_size_multiple=8,
            seed=1,
        ).next_epoch_itr(shuffle=True)
        ids = [i for batch in itr for i in batch["id"].tolist()]
        assert sorted(ids) == list(range(461)), (max_tokens, max_sentences, len(ids))


@pytest.mark.parametrize("where", ["train", "generate"])
def test_examples_longer_than_the_model_accepts_stop_the_command(tiny_corpus, tiny_checkpoint, tmp_path, where):
    """fairseq would skip them (training: with only a warning); with the plugin they are an error that says so,
    unless --skip-invalid-size-inputs-valid-test asks for skipping (tests/test_fairseq_fixes.py)."""
    if where == "train":
        proc = fairseq(
            "fairseq-train",
            tiny_corpus,
            "--user-dir",
            USER_DIR,
            "--arch",
            "vanilla_transformer_tiny",
            "--share-all-embeddings",
            "--optimizer",
            "adam",
            "--lr",
            "0.001",
            "--max-tokens",
            "1024",
            "--criterion",
            "vanilla_label_smoothed_cross_entropy",
            "--max-update",
            "1",
            "--no-save",
            "--max-source-positions",
            "8",
            "--max-target-positions",
            "8",
            "--save-dir",
            tmp_path,
            check=False,
        )
    else:
        proc = fairseq(
            "fairseq-generate",
            tiny_corpus,
            "--user-dir",
            USER_DIR,
            "--path",
            tiny_checkpoint,
            "--max-source-positions",
            "6",
            "--batch-size",
            "8",
            check=False,
        )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(r"error: [\d,]+ example\(s\) longer than the model accepts \(max_positions=", errors[0])
    assert "--max-source-positions" in errors[0] and "never skips examples silently" in errors[0]
