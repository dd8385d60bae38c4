"""Each repair of fairseq_vanilla.fairseq_fixes: upstream's behaviour (the defect, reproduced) next to ours."""

import argparse
import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import fairseq_vanilla  # noqa: F401  (installs the repairs)
from conftest import ROOT, USER_DIR, fairseq
from fairseq_vanilla import fairseq_fixes
from fairseq_vanilla.fairseq_fixes.patching import upstream


def translation_task(data, *flags):
    """fairseq's translation task and training cfg for the tiny corpus, built as fairseq-train builds them."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser,
        [
            str(data),
            "--user-dir",
            USER_DIR,
            "--task",
            "translation",
            "--arch",
            "vanilla_transformer_tiny",
            "--share-all-embeddings",
            "--optimizer",
            "adam",
            "--lr",
            "0.001",
            "--criterion",
            "vanilla_label_smoothed_cross_entropy",
            *flags,
        ],
    )
    cfg = convert_namespace_to_omegaconf(args)
    return tasks.setup_task(cfg.task), cfg


# ---------------------------------------------------------------- the package


def test_every_repair_states_its_defect_upstream_and_version_and_installs_twice():
    for module in fairseq_fixes.repair_modules():
        assert module.DEFECT and module.UPSTREAM and re.fullmatch(r"\d+\.\d+\.\d+(\.\d+)?", module.CHECKED_AGAINST)
        module.install()  # idempotent: a second install changes nothing
    fairseq_fixes.install_all()
    from fairseq.data import data_utils

    assert upstream(data_utils, "batch_by_size").__module__ == "fairseq.data.data_utils"


def test_another_fairseq_version_warns_once_per_repair_naming_it(monkeypatch):
    from fairseq_vanilla.fairseq_fixes import exact_resume

    monkeypatch.setattr(exact_resume, "CHECKED_AGAINST", "0.12.2")
    with pytest.warns(UserWarning, match=r"repair 'exact_resume' was checked against fairseq 0\.12\.2") as seen:
        fairseq_fixes.install_all()
    assert len(seen) == 1 and "\n" not in str(seen[0].message)


def test_no_global_excepthook_and_errors_are_one_line_where_raised():
    assert sys.excepthook is sys.__excepthook__
    code = (
        "import fairseq_vanilla; from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError\n"
        "try:\n    raise CheckpointError('x.pt: caught')\nexcept Exception as e:\n    print('caught:', e)\n"
        "raise CheckpointError('y.pt: refused to load')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and proc.stdout == "caught: x.pt: caught\n"
    assert proc.stderr.strip().splitlines()[-1] == "error: y.pt: refused to load" and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- checkpoint_safety


def test_safe_loader_loads_what_torch_refuses_passes_arguments_and_never_turns_weights_only_off(
    tiny_checkpoint, tmp_path
):
    from fairseq import checkpoint_utils

    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError, TorchWithSafeLoad

    state = checkpoint_utils.load_checkpoint_to_cpu(str(tiny_checkpoint))
    state["extra_state"]["legacy_args"] = argparse.Namespace(arch="vanilla_transformer_tiny")
    state["extra_state"]["best"] = np.float64(1.5)
    path = tmp_path / "legacy.pt"
    torch.save(state, path)
    with pytest.raises(Exception, match="Unsupported global"):  # upstream: torch.load as fairseq calls it
        torch.load(path, map_location=torch.device("cpu"))
    ours = TorchWithSafeLoad("torch")
    loaded = ours.load(str(path), map_location=torch.device("cpu"), mmap=True)  # the caller's mmap reaches torch
    assert loaded["extra_state"]["legacy_args"].arch == "vanilla_transformer_tiny"
    assert all(torch.equal(loaded["model"][k], state["model"][k]) for k in state["model"])
    with pytest.raises(CheckpointError, match="weights_only=False"):
        ours.load(str(path), weights_only=False)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        ours.load(str(tmp_path / "missing.pt"))


# ---------------------------------------------------------------- atomic_checkpoints


@pytest.mark.parametrize("side", ["upstream", "ours"])
def test_a_kill_during_the_copy_of_checkpoint_last(tmp_path, monkeypatch, side):
    """Upstream's copy leaves a truncated checkpoint_last.pt; ours leaves the previous complete one."""
    import shutil

    from fairseq import checkpoint_utils

    manager = checkpoint_utils.PathManager
    manager = manager._inner if side == "upstream" else manager
    src, dst = tmp_path / "checkpoint_best.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 100000)
    dst.write_bytes(b"old complete checkpoint")
    real_copyfile = shutil.copyfile  # what both copies call (fairseq's PathManager without iopath, and ours)

    def dies_half_way(a, b):
        with open(b, "wb") as f:
            f.write(open(a, "rb").read()[:1000])
        raise KeyboardInterrupt  # the kill arrives during the copy

    monkeypatch.setattr(shutil, "copyfile", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        manager.copy(str(src), str(dst), overwrite=True)
    if side == "upstream":
        assert dst.read_bytes() == (b"new" * 100000)[:1000]  # truncated under the final name
    else:
        assert dst.read_bytes() == b"old complete checkpoint" and not (tmp_path / "checkpoint_last.pt.tmp").exists()
        monkeypatch.setattr(shutil, "copyfile", real_copyfile)
        assert manager.copy(str(src), str(dst), overwrite=True) and dst.read_bytes() == src.read_bytes()


# ---------------------------------------------------------------- architecture_mismatch


def test_checkpoint_of_another_architecture_upstream_traceback_ours_one_line(tiny_corpus, tiny_checkpoint):
    from fairseq.trainer import Trainer

    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError

    task, cfg = translation_task(tiny_corpus, "--encoder-layers", "3")
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    trainer = Trainer(cfg, task, model, criterion)
    with pytest.raises(Exception, match="Cannot load model parameters from checkpoint") as seen:
        upstream(Trainer, "load_checkpoint")(trainer, str(tiny_checkpoint))
    assert type(seen.value) is Exception and "encoder.layers.2" not in str(seen.value)  # the cause is elsewhere
    with pytest.raises(CheckpointError) as seen:
        trainer.load_checkpoint(str(tiny_checkpoint))
    assert str(seen.value).startswith(f"{tiny_checkpoint}: a checkpoint of another architecture")
    assert "encoder.layers.2" in str(seen.value) and "\n" not in str(seen.value)


# ---------------------------------------------------------------- no_sentence_lost


def test_batch_by_size_upstream_drops_the_tail_ours_keeps_it():
    from fairseq.data import data_utils

    indices, sizes = np.arange(461, dtype=np.int64), np.full(461, 10, dtype=np.int64)
    theirs = upstream(data_utils, "batch_by_size")(indices, None, sizes, None, 128, 8)
    ours = data_utils.batch_by_size(indices, None, sizes, None, 128, 8)
    assert sum(map(len, theirs)) == 456  # the defect: 5 of 461 lost
    assert sorted(np.concatenate(ours).tolist()) == list(range(461))
    assert all(len(b) % 8 == 0 for b in ours[:-1])  # the multiple still holds for all but the last batch


def test_size_filter_upstream_skips_silently_ours_only_when_asked(tiny_corpus, caplog):
    from fairseq.tasks import FairseqTask

    from fairseq_vanilla.fairseq_fixes.no_sentence_lost import SKIP_FLAG_ATTR, ExampleTooLongError

    task, _ = translation_task(tiny_corpus)
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    indices = np.arange(len(dataset))
    too_long = sorted(i for i in indices if dataset.src_sizes[i] > 6 or dataset.tgt_sizes[i] > 6)
    assert 0 < len(too_long) < len(indices)
    # upstream, as the trainer calls it for training (always ignore_invalid_inputs=True): skipped with a warning
    kept = upstream(FairseqTask, "filter_indices_by_size")(task, indices, dataset, (6, 6), True)
    assert len(kept) == len(indices) - len(too_long)
    setattr(task, SKIP_FLAG_ATTR, False)  # fairseq-train without --skip-invalid-size-inputs-valid-test
    with pytest.raises(ExampleTooLongError, match=rf"{len(too_long)} example\(s\) longer than the model accepts"):
        task.filter_indices_by_size(indices, dataset, (6, 6), True)
    setattr(task, SKIP_FLAG_ATTR, True)  # with it
    with caplog.at_level(logging.WARNING):
        kept = task.filter_indices_by_size(indices, dataset, (6, 6), True)
    assert sorted(set(indices) - set(kept)) == too_long
    assert f"skipped {len(too_long)} example(s)" in caplog.text and str([int(i) for i in too_long]) in caplog.text


def test_skip_flag_is_honoured_by_generate_and_train(tiny_corpus, tiny_checkpoint, tmp_path):
    out = fairseq(
        "fairseq-generate",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        "--path",
        tiny_checkpoint,
        "--max-source-positions",
        "6",
        "--max-target-positions",
        "6",
        "--skip-invalid-size-inputs-valid-test",
        "--batch-size",
        "8",
        "--beam",
        "1",
        "--max-len-b",
        "5",
    )
    text = out.stdout + out.stderr
    skipped = re.search(r"skipped (\d+) example\(s\) longer than max_positions=.*?: ids (\[[\d, ]*\])", text)
    translated = {int(i) for i in re.findall(r"^H-(\d+)\t", out.stdout, re.M)}
    assert skipped and len(translated) + int(skipped.group(1)) == 61
    assert translated.isdisjoint(eval(skipped.group(2))) and len(eval(skipped.group(2))) == int(skipped.group(1))
    out = fairseq(
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
        "--skip-invalid-size-inputs-valid-test",
        "--save-dir",
        tmp_path,
    )
    assert re.search(r"skipped [\d,]+ example\(s\) longer than max_positions=\(8, 8\)", out.stdout + out.stderr)


# ---------------------------------------------------------------- exact_resume


def test_batches_upstream_depend_on_the_start_epoch_ours_do_not(tiny_corpus):
    from fairseq.tasks import FairseqTask

    task, _ = translation_task(tiny_corpus)
    task.load_dataset("train")
    dataset = task.dataset("train")

    def batches(get, epoch):
        task.dataset_to_epoch_iter.clear()  # a new process: nothing cached
        itr = get(
            task,
            dataset,
            max_tokens=2048,
            max_positions=(1024, 1024),
            required_batch_size_multiple=8,
            seed=1,
            epoch=epoch,
        )
        return itr, sorted(tuple(sorted(b)) for b in itr.frozen_batches)

    theirs = upstream(FairseqTask, "get_batch_iterator")
    assert batches(theirs, 1)[1] != batches(theirs, 4)[1]  # the defect: a run resumed in epoch 4 gets other batches
    itr, ours = batches(FairseqTask.get_batch_iterator, 4)
    assert ours == batches(theirs, 1)[1] and itr.epoch == 4 and itr.next_epoch_idx == 4


# ---------------------------------------------------------------- epoch_workers


class EpochItems(torch.utils.data.Dataset):
    """Item i of epoch e is (e, i): what an epoch-seeded augmentation depends on."""

    def __init__(self):
        self.epoch = 1

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        return torch.tensor([self.epoch, i])

    def __len__(self):
        return 4


@pytest.mark.parametrize("side", ["upstream", "ours"])
def test_dataloader_workers_see_the_epoch(side, monkeypatch):
    from fairseq.data import iterators

    if side == "upstream":
        monkeypatch.setattr(
            iterators.EpochBatchIterator,
            "_get_iterator_for_epoch",
            upstream(iterators.EpochBatchIterator, "_get_iterator_for_epoch"),
        )
    itr = iterators.EpochBatchIterator(
        EpochItems(), torch.stack, [[0, 1], [2, 3]], num_workers=1, reuse_dataloader=True, persistent_workers=True
    )
    seen = [sorted({int(b[0, 0]) for b in itr.next_epoch_itr(shuffle=False)}) for _ in range(3)]
    assert seen == ([[1], [1], [1]] if side == "upstream" else [[1], [2], [3]])


# ---------------------------------------------------------------- replace_unk


def test_replace_unk_upstream_fails_ours_copies_the_aligned_word(tmp_path):
    from fairseq import utils

    pairs = [(0, 0), (2, 1), (1, 2)]  # --print-alignment hard: (source, target)
    with pytest.raises(TypeError):
        upstream(utils, "replace_unk")("a <unk> c", "x y zorb", pairs, {}, "<unk>")
    assert utils.replace_unk("a <unk> c", "x y zorb", pairs, {}, "<unk>") == "a zorb c"
    with pytest.raises(FileNotFoundError):
        upstream(utils, "load_align_dict")("@@ ")  # the bare flag's constant, opened as a file
    assert utils.load_align_dict("@@ ") == {}
    (tmp_path / "dict.txt").write_text("zorb Zorb\n")
    assert utils.load_align_dict(str(tmp_path / "dict.txt")) == {"zorb": "Zorb"}
