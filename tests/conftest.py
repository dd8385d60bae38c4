"""Shared fixtures: the venv's fairseq binaries, a tiny synthetic corpus binarised once, a tiny trained model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fairseq_vanilla

fairseq_vanilla.register()  # the tests hand our models, tasks and repairs to fairseq in this process too

ROOT = Path(__file__).resolve().parents[1]
USER_DIR = str(ROOT / "fairseq_vanilla")
BIN = Path(sys.executable).parent  # the venv's bin folder: fairseq-train, fairseq-generate, …


def fairseq(cmd: str, *args, check: bool = True, cwd=None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a stock fairseq binary (``fairseq-train`` …) from the venv; output captured as text."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run(
        [str(BIN / cmd), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def validate_classifier(data, checkpoint, *flags) -> tuple[int, float]:
    """``fairseq-validate`` of an ``imdb_classification`` checkpoint on the test split: (examples, accuracy) as it
    prints them."""
    out = fairseq(
        "fairseq-validate", data, "--user-dir", USER_DIR, "--path", checkpoint, "--task", "imdb_classification",
        "--valid-subset", "test", *flags,
    )  # fmt: skip
    log = out.stdout + out.stderr
    return int(re.search(r"examples (\d+)", log).group(1)), float(re.search(r"accuracy ([0-9.]+)", log).group(1))


def write_parallel(folder: Path, split: str, pairs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.en").write_text("".join(p[0] + "\n" for p in pairs), encoding="utf-8")
    (folder / f"{split}.de").write_text("".join(p[1] + "\n" for p in pairs), encoding="utf-8")


def binarize(raw: Path, dest: Path, test_splits=("test",), extra=()) -> Path:
    """fairseq-preprocess (word level, joined dictionary) of raw/{train,valid,<tests>}.{en,de}."""
    testpref = ",".join(str(raw / s) for s in test_splits)
    fairseq(
        "fairseq-preprocess",
        "--source-lang",
        "en",
        "--target-lang",
        "de",
        "--joined-dictionary",
        "--trainpref",
        raw / "train",
        "--validpref",
        raw / "valid",
        "--testpref",
        testpref,
        "--destdir",
        dest,
        "--workers",
        "1",
        *extra,
    )
    return dest


TINY_TRAIN_FLAGS = (
    "--arch",
    "vanilla_transformer_tiny",
    "--share-all-embeddings",
    "--optimizer",
    "adam",
    "--adam-betas",
    "(0.9, 0.98)",
    "--lr",
    "0.002",
    "--lr-scheduler",
    "inverse_sqrt",
    "--warmup-updates",
    "20",
    "--criterion",
    "vanilla_label_smoothed_cross_entropy",
    "--label-smoothing",
    "0.1",
    "--max-tokens",
    "2048",
    "--seed",
    "1",
    "--num-workers",
    "0",
    "--log-format",
    "simple",
    "--log-interval",
    "10",
    "--no-epoch-checkpoints",
)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Binarised synthetic corpus: 1200 train, 61 valid, 61 test pairs (word level)."""
    from fairseq_vanilla.text.synthetic import write_corpus

    base = tmp_path_factory.mktemp("tiny")
    write_corpus(str(base / "raw"), (("train", 1200), ("valid", 61), ("test", 61)), seed=7)
    return binarize(base / "raw", base / "bin")


def train_tiny(corpus: Path, save: Path, updates: int, *flags) -> Path:
    """vanilla_transformer_tiny (TINY_TRAIN_FLAGS + ``flags``) trained for ``updates`` updates on ``corpus`` by the
    real fairseq-train into ``save`` (its log in ``save/train.log``); returns the last checkpoint."""
    proc = fairseq(
        "fairseq-train", corpus, "--user-dir", USER_DIR, *TINY_TRAIN_FLAGS, *flags,
        "--max-update", str(updates), "--save-dir", save,
    )  # fmt: skip
    (save / "train.log").write_text(proc.stdout + proc.stderr)
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_corpus, tmp_path_factory) -> Path:
    """A vanilla_transformer_tiny trained for 150 updates on the tiny corpus by the real fairseq-train."""
    return train_tiny(tiny_corpus, tmp_path_factory.mktemp("ckpt"), 150)


@pytest.fixture(scope="session")
def prenorm_checkpoint(tiny_corpus, tmp_path_factory) -> Path:
    """vanilla_transformer_tiny with --encoder-normalize-before --decoder-normalize-before (pre-norm), one epoch
    (6 updates) on the tiny corpus by the real fairseq-train."""
    flags = ("--encoder-normalize-before", "--decoder-normalize-before")
    return train_tiny(tiny_corpus, tmp_path_factory.mktemp("prenorm"), 6, *flags)


@pytest.fixture(scope="session")
def prenorm_generated(prenorm_checkpoint, tiny_corpus) -> str:
    """The stock fairseq-generate's output (beam 5) of prenorm_checkpoint on the tiny corpus's 61 test sentences."""
    return fairseq(
        "fairseq-generate", tiny_corpus, "--user-dir", USER_DIR, "--path", prenorm_checkpoint,
        "--gen-subset", "test", "--beam", 5, "--batch-size", 128,
    ).stdout  # fmt: skip


def run_script(*args, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run one of scripts/ (bash for .sh, the venv's python for .py); fails with its output on a non-zero exit."""
    script = str(ROOT / "scripts" / args[0])
    cmd = ["bash", script] if script.endswith(".sh") else [sys.executable, script]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run([*cmd, *map(str, args[1:])], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def prepared_model(tmp_path_factory):
    """The pipeline on cased synthetic text: prepare-multi30k.sh --lower (joint BPE, 300 merges), then
    train.sh --preset demo for 200 updates with --tensorboard-logdir. Returns the folder (prep/, ckpt/, tb/, raw/)."""
    from fairseq_vanilla.text.synthetic import write_corpus

    base = tmp_path_factory.mktemp("prepared_model")
    # 13 test sentences: not a multiple of 8
    write_corpus(str(base / "raw"), (("train", 2500), ("val", 50), ("test_2016_flickr", 13)), seed=3)
    run_script("prepare-multi30k.sh", "--from", base / "raw", "--out", base / "prep", "--bpe-ops", "300", "--lower")
    run_script(
        "train.sh",
        "--preset",
        "demo",
        "--data",
        base / "prep" / "bin",
        "--save",
        base / "ckpt",
        "--",
        "--max-update",
        "200",
        "--num-workers",
        "0",
        "--log-interval",
        "20",
        "--tensorboard-logdir",
        base / "tb",
    )
    return base


@pytest.fixture(scope="session")
def generated(prepared_model):
    """scripts/generate.sh (beam 5) of prepared_model's checkpoint on its 13-sentence test split."""
    out = prepared_model / "test"
    if not (out / "bleu.txt").exists():
        run_script(
            "generate.sh",
            "--data",
            prepared_model / "prep",
            "--path",
            prepared_model / "ckpt" / "checkpoint_best.pt",
            "--out",
            out,
            "--beam",
            "5",
        )
    return out
