"""scripts/prepare-multi30k.sh on a slice of the real Multi30k, and its refusals of bad input."""

import gzip
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from data import data_dir

SCRIPT = ROOT / "scripts" / "prepare-multi30k.sh"


def run(*args):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=900)


def write_gz(path: Path, lines):
    with gzip.open(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))


def slice_multi30k(dest: Path, n_train=2000, n_other=101):
    src = data_dir("multi30k")
    dest.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("val", n_other), ("test_2016_flickr", n_other), ("test_2017_mscoco", 37)):
        stem = "test_2016_flickr" if name == "test_2017_mscoco" else name  # a second test set for test1
        for lang in ("en", "de"):
            with gzip.open(src / f"{stem}.{lang}.gz", "rb") as f:
                lines = f.read().split(b"\n")[:n]
            write_gz(dest / f"{name}.{lang}.gz", lines)
    return dest


def test_prepare_multi30k_slice_end_to_end(tmp_path):
    raw = slice_multi30k(tmp_path / "from")
    out = tmp_path / "out"
    proc = run("--from", raw, "--out", out, "--bpe-ops", "500", "--lower")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "bin" / "splits.tsv").read_text().split("\n")[:4] == [
        "train\ttrain",
        "valid\tval",
        "test\ttest_2016_flickr",
        "test1\ttest_2017_mscoco",
    ]
    for split, n in (("train", 2000), ("valid", 101), ("test", 101), ("test1", 37)):
        assert len((out / "bpe" / f"{split}.en").read_text().splitlines()) == n
        assert (out / "bin" / f"{split}.en-de.de.bin").exists()
    assert "@@ " in (out / "bpe" / "train.de").read_text()
    assert (out / "tok" / "train.en").read_text() == (out / "tok" / "train.en").read_text().lower()
    assert not list(out.glob("*.tmp"))
    # a second run skips every stage
    again = run("--from", raw, "--out", out, "--bpe-ops", "500", "--lower")
    assert again.returncode == 0 and again.stdout.count("done already") == 4
    # the recipes on it: scripts/train.sh (a few updates) and scripts/generate.sh (beam search, four scores)
    save = tmp_path / "ckpt"
    train = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "train.sh"),
            "--preset",
            "demo",
            "--data",
            str(out / "bin"),
            "--save",
            str(save),
            "--",
            "--max-update",
            "20",
            "--num-workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0 and (save / "checkpoint_last.pt").exists(), train.stdout[-2000:] + train.stderr[-2000:]
    gen = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "generate.sh"),
            "--data",
            str(out),
            "--path",
            str(save / "checkpoint_last.pt"),
            "--out",
            str(tmp_path / "test"),
            "--beam",
            "2",
            "--split",
            "test1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert gen.returncode == 0, gen.stderr[-3000:]
    report = (tmp_path / "test" / "bleu.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in report] == [
        "sacreBLEU, detokenised",
        "fairseq-score, tokenised",
        "fairseq-score, tokenised, lower-cased",
        "fairseq-score, tokenised, compound-split (as the paper's WMT14 numbers)",
        "hypotheses",
    ]
    assert "case:lc" in report[0] and report[-1] == "hypotheses: 37 of 37 source sentences"
    assert len((tmp_path / "test" / "hyp.txt").read_text().splitlines()) == 37


def test_sentencepiece_variant(tmp_path):
    raw = slice_multi30k(tmp_path / "from", n_train=1500, n_other=20)
    out = tmp_path / "out"
    proc = run("--from", raw, "--out", out, "--bpe-ops", "800", "--spm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "spm" / "spm.model").exists() and "▁" in (out / "spm" / "train.en").read_text()
    assert "segmentation=spm" in (out / "bin" / "pipeline.txt").read_text()


@pytest.mark.parametrize(
    "defect,message",
    [
        ("mismatch", "train.en has 5 lines but"),
        ("empty", "file is empty"),
        ("non-utf8", "not valid UTF-8"),
        ("missing", "missing"),
    ],
)
def test_bad_input_stops_with_the_file_named(tmp_path, defect, message):
    src = tmp_path / "from"
    src.mkdir()
    good = [b"A man rides a bike .", b"Two dogs play .", b"A woman sings .", b"Kids run .", b"A cat sleeps ."]
    for name in ("train", "val", "test_2016_flickr"):
        write_gz(src / f"{name}.en.gz", good)
        write_gz(src / f"{name}.de.gz", good)
    if defect == "mismatch":
        write_gz(src / "train.de.gz", good[:4])
    elif defect == "empty":
        write_gz(src / "val.de.gz", [])
        (src / "val.de.gz").write_bytes(gzip.compress(b""))
    elif defect == "non-utf8":
        write_gz(src / "test_2016_flickr.en.gz", good[:2] + [b"caf\xe9 au lait"] + good[3:])
    elif defect == "missing":
        (src / "val.en.gz").unlink()
    out = tmp_path / "out"
    proc = run("--from", src, "--out", out)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert not (out / "raw").exists()  # nothing a re-run would trust
    if defect == "non-utf8":
        assert "test_2016_flickr.en:3" in proc.stderr  # the user's file, not our decompressed copy
