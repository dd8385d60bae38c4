"""Issue 6: a SIGKILLed fairseq-train, started again with the same command, resumes and ends where an
uninterrupted run ends; checkpoint files are never left half-written under their final names."""
import os
import re
import signal
import subprocess
import time

import pytest
import torch

from conftest import BIN, ROOT, TINY_TRAIN_FLAGS, USER_DIR, fairseq

FLAGS = TINY_TRAIN_FLAGS + ("--max-update", "60", "--save-interval-updates", "20", "--keep-interval-updates", "2",
                            "--dropout", "0.1")


def _params(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]  # our own file, written by this test


def test_sigkill_then_same_command_resumes_and_matches_an_uninterrupted_run(tiny_corpus, tmp_path):
    straight = tmp_path / "straight"
    run = fairseq("fairseq-train", tiny_corpus, "--user-dir", USER_DIR, *FLAGS, "--save-dir", straight)
    (straight / "train.log").write_text(run.stdout + run.stderr)

    killed = tmp_path / "killed"
    cmd = [str(BIN / "fairseq-train"), str(tiny_corpus), "--user-dir", USER_DIR, *FLAGS, "--save-dir", str(killed)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    log_path = tmp_path / "killed.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 300
    saved = re.compile(r"Saved checkpoint \S+checkpoint_\d+_40\.pt \(epoch \d+ @ 40 updates")
    while not saved.search(log_path.read_text()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # fairseq logs this line once the checkpoint and its copies are all written
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    resumed = fairseq("fairseq-train", tiny_corpus, "--user-dir", USER_DIR, *FLAGS, "--save-dir", killed)
    log = resumed.stdout + resumed.stderr
    at = int(re.search(r"Loaded checkpoint \S+ \(epoch \d+ @ (\d+) updates\)", log).group(1))
    assert at >= 40  # lost at most the updates since the last checkpoint that was complete when the kill came

    # The checkpoint the resumed run started from is bit-identical to the uninterrupted run's at that update …
    a, b = (_params(next(d.glob(f"checkpoint_*_{at}.pt"))) for d in (straight, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # … and the run ends at the same validation loss. Not bit-identical: resuming mid-epoch in fairseq 0.12 gives
    # parameters that differ by ~1e-2 after 20 more updates (measured; the data order, per-update dropout seeds and
    # optimizer state are restored), so the tolerance is on the loss: measured |Δ| ≈ 0.01 bits of ~5.
    final = [float(re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", text)[-1])
             for text in ((straight / "train.log").read_text(), log)]
    print(f"final valid loss: uninterrupted {final[0]}, killed at {at} and resumed {final[1]}")
    assert abs(final[0] - final[1]) < 0.1, f"final valid loss {final[0]} uninterrupted vs {final[1]} resumed"


def test_checkpoint_copies_are_atomic(tmp_path, monkeypatch):
    from fairseq import checkpoint_utils

    import fairseq_vanilla.atomic_checkpoints as atomic

    src, dst = tmp_path / "checkpoint_best.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old complete checkpoint")

    def dies_half_way(a, b):
        with open(b, "wb") as f:
            f.write(open(a, "rb").read()[:100])
        raise KeyboardInterrupt  # the kill arrives during the copy

    monkeypatch.setattr(atomic.shutil, "copyfile", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old complete checkpoint" and not (tmp_path / "checkpoint_last.pt.tmp").exists()
    monkeypatch.undo()
    assert checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == src.read_bytes()
