"""A fairseq-train killed with SIGKILL and started again with the same command ends bit for bit where an uninterrupted
run ends: parameters, optimizer state and every logged loss, with dropout on, for translation and for the IMDB task
(on-the-fly augmentation, a DataLoader worker); also when the kill comes while a checkpoint is being written."""

import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
import torch

from conftest import BIN, ROOT, TINY_TRAIN_FLAGS, USER_DIR
from fairseq_vanilla.fairseq_fixes.checkpoint_safety import safe_torch_load

TIMING = {
    "wps",
    "ups",
    "wpb_per_s",
    "wall",
    "train_wall",
    "gb_free",
    "cuda_gb_allocated",
    "cuda_gb_reserved",
    "cuda_gb_free",
}  # logged figures that measure time, not training
MAX_UPDATE = 40
SAVE_EVERY = 7  # 6 updates per epoch (translation), 7 (IMDB): every save before update 40 but 28 (IMDB) is mid-epoch


def translation_flags():
    flags = list(TINY_TRAIN_FLAGS)
    flags[flags.index("--log-format") + 1] = "json"
    flags[flags.index("--log-interval") + 1] = "1"
    return [
        "--user-dir",
        USER_DIR,
        *flags,
        "--dropout",
        "0.1",
        "--attention-dropout",
        "0.1",
        "--max-update",
        str(MAX_UPDATE),
        "--save-interval-updates",
        str(SAVE_EVERY),
        "--keep-interval-updates",
        "2",
    ]


IMDB_FLAGS = [
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
    "1",
    "--log-format",
    "json",
    "--log-interval",
    "1",
    "--max-positions",
    "64",
    "--no-epoch-checkpoints",
    "--dropout",
    "0.1",
    "--random-deletion",
    "0.1",
    "--random-swap",
    "0.1",
    "--max-update",
    str(MAX_UPDATE),
    "--save-interval-updates",
    str(SAVE_EVERY),
    "--keep-interval-updates",
    "2",
]


def command(data, flags, save_dir):
    return [str(BIN / "fairseq-train"), str(data), *flags, "--save-dir", str(save_dir)]


def environment():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")  # one thread: CPU reductions in one order


def train(data, flags, save_dir) -> str:
    """fairseq-train to the end; returns its log."""
    proc = subprocess.run(
        command(data, flags, save_dir), capture_output=True, text=True, env=environment(), timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def train_and_kill(data, flags, save_dir, log_path, kill_when) -> None:
    """Start fairseq-train in its own process group; SIGKILL the group as soon as ``kill_when(log, save_dir)``."""
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            command(data, flags, save_dir),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment(),
            start_new_session=True,
        )
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not kill_when(log_path.read_text(), save_dir):
        time.sleep(0.002)
    assert proc.poll() is None, "training ended before it could be killed:\n" + log_path.read_text()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the process and its DataLoader worker, as a pre-empted machine would
    proc.wait()


def records(log: str):
    """{(kind, num_updates): logged figures without timings} for every train_inner, train and valid record."""
    out = {}
    for kind, text in re.findall(r"(train_inner|train|valid)[ |:]+(\{\".*\})", log):
        record = {k: v for k, v in json.loads(text).items() if re.sub(r"^(train|valid)_", "", k) not in TIMING}
        updates = next(int(v) for k, v in record.items() if k.endswith("num_updates"))
        out[(kind, updates)] = record
    return out


def updates_logged(log: str):
    return [int(u) for kind, u in records(log) if kind == "train_inner"]


def loaded_at(log: str) -> int:
    return int(re.search(r"Loaded checkpoint \S+ \(epoch \d+ @ (\d+) updates\)", log).group(1))


def assert_same_final_state(straight_dir, resumed_dir):
    a, b = (safe_torch_load(str(d / "checkpoint_last.pt")) for d in (straight_dir, resumed_dir))
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    opt_a, opt_b = a["last_optimizer_state"], b["last_optimizer_state"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert opt_a["state"].keys() == opt_b["state"].keys()
    for i in opt_a["state"]:
        for key, value in opt_a["state"][i].items():
            same = (
                torch.equal(value, opt_b["state"][i][key])
                if torch.is_tensor(value)
                else value == opt_b["state"][i][key]
            )
            assert same, (i, key)
    assert a["optimizer_history"][-1]["lr_scheduler_state"] == b["optimizer_history"][-1]["lr_scheduler_state"]
    assert a["optimizer_history"][-1]["num_updates"] == b["optimizer_history"][-1]["num_updates"] == MAX_UPDATE


def assert_same_logs(straight_log, *parts):
    """Every record of the killed and the resumed run equals the uninterrupted run's at the same update."""
    reference = records(straight_log)
    for part in parts:
        for key, record in records(part).items():
            assert record == reference[key], (key, record, reference[key])


def kill_resume_and_compare(data, flags, tmp_path, straight_log):
    """Kill at a random update after the first checkpoint, rerun the same command, compare with the straight run."""
    kill_at = random.randint(SAVE_EVERY + 1, MAX_UPDATE - 6)
    print(f"killing at update {kill_at}")
    killed = tmp_path / "killed"
    log_path = tmp_path / "killed.log"
    train_and_kill(data, flags, killed, log_path, lambda log, _: f'"num_updates": "{kill_at}"' in log)
    first = log_path.read_text()
    resumed = train(data, flags, killed)
    at = loaded_at(resumed)
    print(f"resumed from the checkpoint of update {at}")
    assert SAVE_EVERY <= at < MAX_UPDATE and min(updates_logged(resumed)) == at + 1
    assert set(updates_logged(first)) | set(updates_logged(resumed)) == set(range(1, MAX_UPDATE + 1))
    assert_same_logs(straight_log, first, resumed)
    assert_same_final_state(tmp_path / "straight", killed)


@pytest.fixture(scope="module")
def straight_translation(tiny_corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("resume") / "straight"
    return save, train(tiny_corpus, translation_flags(), save)


def test_translation_resumes_bit_for_bit_after_sigkill_mid_epoch(tiny_corpus, straight_translation, tmp_path):
    save, log = straight_translation
    (tmp_path / "straight").symlink_to(save)
    kill_resume_and_compare(tiny_corpus, translation_flags(), tmp_path, log)


def test_kill_while_a_checkpoint_is_written(tiny_corpus, straight_translation, tmp_path):
    """SIGKILL while a save's temporary file exists (the first file, or a copy such as checkpoint_last.pt): no file
    under a final name is truncated, and the same command still ends bit for bit at the uninterrupted run's state."""
    save, straight_log = straight_translation
    (tmp_path / "straight").symlink_to(save)
    killed, log_path = tmp_path / "killed", tmp_path / "killed.log"
    caught, after_first_save = [], f'"num_updates": "{SAVE_EVERY + 1}"'

    def writing(log, save_dir):
        caught[:] = [p.name for p in save_dir.glob("*.tmp")] if save_dir.exists() else []
        return bool(caught) and after_first_save in log  # a later save is being written

    train_and_kill(tiny_corpus, translation_flags(), killed, log_path, writing)
    print(f"killed while writing {caught}; files left: {sorted(p.name for p in killed.iterdir())}")
    for path in killed.glob("*.pt"):
        safe_torch_load(str(path))  # complete, or the error names the truncated file
    resumed = train(tiny_corpus, translation_flags(), killed)
    assert loaded_at(resumed) >= SAVE_EVERY
    assert_same_logs(straight_log, log_path.read_text(), resumed)
    assert_same_final_state(tmp_path / "straight", killed)


def write_reviews(n, seed):
    """n labelled word-level reviews (pos: GOOD words, neg: BAD words, FILL in both) as input0/label text files."""
    from test_imdb import BAD, FILL, GOOD

    rng = random.Random(seed)
    reviews, labels = [], []
    for i in range(n):
        label = "pos" if i % 3 else "neg"
        words = GOOD if label == "pos" else BAD
        reviews.append(" ".join(rng.choice(FILL + words) for _ in range(rng.randint(6, 40))))
        labels.append(label)
    return reviews, labels


@pytest.fixture(scope="module")
def imdb_bin(tmp_path_factory):
    """A binarised imdb_classification layout (input0/, label/) of 110 train and 12 valid word-level reviews."""
    from conftest import fairseq

    base = tmp_path_factory.mktemp("imdb_resume")
    for part in ("input0", "label"):
        (base / "raw" / part).mkdir(parents=True)
    for split, n, seed in (("train", 110, 1), ("valid", 12, 2)):
        reviews, labels = write_reviews(n, seed)
        (base / "raw" / "input0" / split).write_text("\n".join(reviews) + "\n")
        (base / "raw" / "label" / split).write_text("\n".join(labels) + "\n")
    for part in ("input0", "label"):
        fairseq(
            "fairseq-preprocess",
            "--only-source",
            "--trainpref",
            base / "raw" / part / "train",
            "--validpref",
            base / "raw" / part / "valid",
            "--destdir",
            base / "bin" / part,
            "--workers",
            "1",
        )
    return base / "bin"


def test_imdb_with_augmentation_resumes_bit_for_bit_after_sigkill_mid_epoch(imdb_bin, tmp_path):
    straight_log = train(imdb_bin, IMDB_FLAGS, tmp_path / "straight")
    kill_resume_and_compare(imdb_bin, IMDB_FLAGS, tmp_path, straight_log)
