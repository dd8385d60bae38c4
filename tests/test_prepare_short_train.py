"""scripts/prepare-short-train.sh: a prepared corpus whose training pairs have at most N tokens a side, with the
source corpus's dictionary, valid and test whole (the positions experiment's data)."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_script


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    from fairseq_vanilla.text.synthetic import write_corpus

    base = tmp_path_factory.mktemp("short")
    write_corpus(str(base / "raw"), (("train", 400), ("val", 30), ("test_2016_flickr", 20)), seed=5)
    run_script("prepare-multi30k.sh", "--from", base / "raw", "--out", base / "prep", "--bpe-ops", "100", "--lower")
    return base


def _digests(folder: Path):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_only_short_training_pairs_are_kept_with_the_same_dictionary(prepared):
    full, short = prepared / "prep", prepared / "short12"
    out = run_script("prepare-short-train.sh", "--data", full, "--max-tokens", 12, "--out", short).stdout
    src, tgt = (full / "bpe" / "train.en").read_text(), (full / "bpe" / "train.de").read_text()
    pairs = [(a, b) for a, b in zip((full / "bpe" / "train.en").read_text().splitlines(), tgt.splitlines())]
    kept = [(a, b) for a, b in pairs if 1 <= len(a.split()) <= 12 and 1 <= len(b.split()) <= 12]
    assert 0 < len(kept) < len(pairs) and f"kept {len(kept)} of {len(pairs)} training pairs" in out
    assert (short / "bpe" / "train.en").read_text().splitlines() == [a for a, _ in kept]
    assert (short / "bpe" / "train.de").read_text().splitlines() == [b for _, b in kept]
    for name in ("bpe/valid.en", "bpe/test.de", "bin/dict.en.txt", "bin/dict.de.txt", "bin/splits.tsv", "raw/test.de"):
        assert (short / name).read_bytes() == (full / name).read_bytes(), name
    assert (short / "bin" / "train.en-de.en.bin").stat().st_size < (full / "bin" / "train.en-de.en.bin").stat().st_size
    assert src  # the source side was read


def test_a_rerun_skips_and_other_options_are_refused_leaving_every_file(prepared):
    full, short = prepared / "prep", prepared / "short6"
    run_script("prepare-short-train.sh", "--data", full, "--max-tokens", 6, "--out", short)
    before = _digests(short)
    again = run_script("prepare-short-train.sh", "--data", full, "--max-tokens", 6, "--out", short).stdout
    assert "done already" in again and _digests(short) == before
    cmd = ["bash", str(ROOT / "scripts" / "prepare-short-train.sh"), "--data", str(full), "--out", str(short)]
    other = subprocess.run([*cmd, "--max-tokens", "7"], capture_output=True, text=True)
    assert other.returncode != 0 and "(--max_tokens: 6 then, 7 now)" in other.stderr and _digests(short) == before
    for bad, message in ((["--max-tokens", "0"], "error: --max-tokens: a positive integer, got '0'"),):
        proc = subprocess.run([*cmd, *bad], capture_output=True, text=True)
        assert (proc.returncode, proc.stderr.strip()) == (2, message)
    same = subprocess.run([*cmd[:-2], "--out", str(full), "--max-tokens", "6"], capture_output=True, text=True)
    assert same.returncode == 2 and same.stderr.startswith("error: --out: must differ from --data")
