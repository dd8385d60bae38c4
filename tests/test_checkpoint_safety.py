"""Checkpoints load with torch's weights_only unpickler on: fairseq's types allowed, anything else refused unrun."""

import argparse
import os
import pickle

import numpy as np
import pytest
import torch

import fairseq_vanilla  # noqa: F401  (installs the safe loader)
from conftest import USER_DIR, fairseq
from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError, safe_torch_load


class Payload:
    """Pickles as a call of os.system: loading it unsafely would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_weights_only_stays_on_globally():
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    from fairseq import checkpoint_utils

    assert checkpoint_utils.torch.load is not torch.load  # fairseq's loader is routed through ours
    assert torch.load.__module__ == "torch.serialization"  # torch itself is untouched


def test_real_checkpoint_loads_in_generate(tiny_corpus, tiny_checkpoint):
    out = fairseq(
        "fairseq-generate",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        "--path",
        tiny_checkpoint,
        "--beam",
        "2",
        "--batch-size",
        "64",
        "--max-len-b",
        "20",
    )
    assert "Translated 61 sentences" in out.stderr + out.stdout


def test_legacy_checkpoint_with_namespace_numpy_and_omegaconf_loads(tiny_corpus, tiny_checkpoint, tmp_path):
    """Older fairseq checkpoints keep args as argparse.Namespace, cfg as DictConfig, numpy scalars in extra_state."""
    from fairseq import checkpoint_utils
    from omegaconf import OmegaConf

    state = safe_torch_load(str(tiny_checkpoint))
    state["extra_state"]["best"] = np.float64(1.25)
    state["extra_state"]["legacy_cfg"] = OmegaConf.create({"lr": [0.1], "nested": {"a": 1}})
    state["extra_state"]["legacy_args"] = argparse.Namespace(lr=[0.1], arch="vanilla_transformer_tiny")
    path = tmp_path / "legacy.pt"
    torch.save(state, path)
    with pytest.raises(pickle.UnpicklingError):  # plain torch refuses it: this is the problem being fixed
        torch.load(path, weights_only=True)
    loaded = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert loaded["extra_state"]["best"] == 1.25
    assert loaded["extra_state"]["legacy_args"].arch == "vanilla_transformer_tiny"
    assert loaded["extra_state"]["legacy_cfg"].nested.a == 1
    out = fairseq(
        "fairseq-generate",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        "--path",
        path,
        "--beam",
        "1",
        "--batch-size",
        "64",
        "--max-len-b",
        "10",
    )
    assert "Translated 61 sentences" in out.stderr + out.stdout


def test_hostile_checkpoint_is_refused_and_payload_never_runs(tiny_corpus, tiny_checkpoint, tmp_path):
    marker = tmp_path / "payload-ran"
    state = safe_torch_load(str(tiny_checkpoint))
    state["extra_state"]["evil"] = Payload(marker)
    path = tmp_path / "hostile.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="hostile.pt: refused to load.*posix.system"):
        safe_torch_load(str(path))
    out = fairseq("fairseq-generate", tiny_corpus, "--user-dir", USER_DIR, "--path", path, check=False)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "hostile.pt" in last and "refused to load" in last, last
    assert "Traceback" not in out.stderr
    assert not marker.exists()


def test_truncated_checkpoint_gets_one_clear_line(tiny_corpus, tiny_checkpoint, tmp_path):
    path = tmp_path / "truncated.pt"
    path.write_bytes(tiny_checkpoint.read_bytes()[:4096])
    out = fairseq("fairseq-generate", tiny_corpus, "--user-dir", USER_DIR, "--path", path, check=False)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "truncated.pt" in last and "not a readable checkpoint" in last, last


def test_checkpoint_of_another_architecture_gets_one_clear_line(tiny_corpus, tiny_checkpoint, tmp_path):
    proc = fairseq(
        "fairseq-train",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        "--arch",
        "vanilla_transformer_tiny",
        "--encoder-layers",
        "3",
        "--share-all-embeddings",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--criterion",
        "vanilla_label_smoothed_cross_entropy",
        "--max-tokens",
        "1024",
        "--max-update",
        "1",
        "--restore-file",
        tiny_checkpoint,
        "--save-dir",
        tmp_path,
        "--no-save",
        check=False,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr
    assert f"{tiny_checkpoint}: a checkpoint of another architecture or size" in errors[0]
    assert "encoder.layers.2" in errors[0]  # names what does not fit


def test_wrong_user_dir_is_named(tiny_corpus, tmp_path):
    proc = fairseq(
        "fairseq-train", tiny_corpus, "--user-dir", tmp_path / "no_such_plugin", "--arch", "transformer", check=False
    )
    assert proc.returncode != 0 and str(tmp_path / "no_such_plugin") in proc.stderr.strip().splitlines()[-1]
