"""scripts/average-checkpoints.py: parameter means, through the safe loader, refusing mismatched models."""

import subprocess
import sys

import torch

from conftest import ROOT
from fairseq_vanilla.fairseq_fixes.checkpoint_safety import safe_torch_load

SCRIPT = ROOT / "scripts" / "average-checkpoints.py"


def test_average_is_the_mean_and_mismatch_is_refused(tiny_checkpoint, tmp_path):
    state = safe_torch_load(str(tiny_checkpoint))
    paths = []
    for shift in (0.0, 1.0, 5.0):
        s = safe_torch_load(str(tiny_checkpoint))
        s["model"] = {k: v + shift if v.is_floating_point() else v for k, v in s["model"].items()}
        paths.append(tmp_path / f"checkpoint{int(shift) + 1}.pt")
        torch.save(s, paths[-1])
    out = tmp_path / "avg.pt"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dir", str(tmp_path), "--last", "3", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    avg = safe_torch_load(str(out))
    for k, v in state["model"].items():
        if v.is_floating_point():
            torch.testing.assert_close(avg["model"][k], v + 2.0)  # mean of +0, +1, +5
    assert "last_optimizer_state" not in avg

    other = safe_torch_load(str(tiny_checkpoint))
    other["model"].pop(next(iter(other["model"])))
    torch.save(other, tmp_path / "other.pt")
    bad = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--inputs",
            str(paths[0]),
            str(tmp_path / "other.pt"),
            "--out",
            str(tmp_path / "x.pt"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "other.pt: its parameters differ" in bad.stderr
    assert not (tmp_path / "x.pt").exists()
