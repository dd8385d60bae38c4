"""The stock fairseq binaries with --user-dir: preprocess, train, generate (beam search), score, validate, restore."""

import re

from conftest import TINY_TRAIN_FLAGS, USER_DIR, fairseq


def hypotheses(stdout: str):
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^H-(\d+)\t\S+\t(.*)$", stdout, re.M)}


def test_train_log_shows_learning(tiny_checkpoint):
    log = tiny_checkpoint.parent / "train.log"
    losses = [float(x) for x in re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", log.read_text())]
    assert len(losses) >= 2 and losses[-1] < losses[0] - 1.0, losses


def test_generate_beam_search_and_score(tiny_corpus, tiny_checkpoint, tmp_path):
    out = fairseq(
        "fairseq-generate",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        "--path",
        tiny_checkpoint,
        "--beam",
        "4",
        "--batch-size",
        "16",
        "--gen-subset",
        "test",
    )
    hyps = hypotheses(out.stdout)
    assert sorted(hyps) == list(range(61))  # every test sentence, once
    assert re.search(r"BLEU4 = [0-9.]+", out.stdout)
    refs = {int(m.group(1)): m.group(2) for m in re.finditer(r"^T-(\d+)\t(.*)$", out.stdout, re.M)}
    (tmp_path / "sys.txt").write_text("".join(hyps[i] + "\n" for i in range(61)))
    (tmp_path / "ref.txt").write_text("".join(refs[i] + "\n" for i in range(61)))
    score = fairseq("fairseq-score", "--sys", tmp_path / "sys.txt", "--ref", tmp_path / "ref.txt")
    bleu = float(re.search(r"BLEU4 = ([0-9.]+)", score.stdout).group(1))
    assert bleu > 5.0, score.stdout  # 150 updates: far above an untrained model's ≈0


def test_validate_and_restore_file_load_the_checkpoint(tiny_corpus, tiny_checkpoint, tmp_path):
    val = fairseq(
        "fairseq-validate",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        "--task",
        "translation",
        "--path",
        tiny_checkpoint,
        "--valid-subset",
        "valid",
        "--batch-size",
        "32",
    )
    assert re.search(r"valid on 'valid' subset \| loss [0-9.]+", val.stdout + val.stderr)
    train = fairseq(
        "fairseq-train",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        *TINY_TRAIN_FLAGS,
        "--restore-file",
        tiny_checkpoint,
        "--max-update",
        "155",
        "--save-dir",
        tmp_path,
    )
    text = train.stdout + train.stderr
    assert "Loaded checkpoint" in text and "num_updates 155" in text.replace("=", " ")
