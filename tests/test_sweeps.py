"""Hyper-parameter search through the stock `fairseq-hydra-train -m`: objective, clean trials, resume, failures.

Every search here is the real command on the tiny corpus with a 1-layer, 32-wide model and a handful of updates;
objectives are checked against the validation losses each trial logged in its own hydra_train.log."""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from omegaconf import OmegaConf

from conftest import BIN, ROOT, USER_DIR

TINY = (
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "model.encoder_embed_dim=32",
    "model.decoder_embed_dim=32",
    "model.encoder_ffn_embed_dim=64",
    "model.decoder_ffn_embed_dim=64",
    "model.encoder_attention_heads=2",
    "model.decoder_attention_heads=2",
    "dataset.num_workers=0",
    "optimization.max_update=6",
    "lr_scheduler.warmup_updates=5",
)


def command(config, folder, data, *overrides):
    return [
        str(BIN / "fairseq-hydra-train"),
        "-m",
        "--config-dir",
        str(ROOT / "examples" / "hydra"),
        "--config-name",
        config,
        f"common.user_dir={USER_DIR}",
        f"task.data={data}",
        f"hydra.sweep.dir={folder}",
        *TINY,
        *overrides,
    ]


def environment():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def sweep(config, folder, data, *overrides, check=True):
    proc = subprocess.run(
        command(config, folder, data, *overrides),
        capture_output=True,
        text=True,
        cwd=folder.parent,
        env=environment(),
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def trials(folder):
    with open(folder / "trials.csv", newline="") as rows:
        return list(csv.DictReader(rows))


def valid_losses(job):
    """The validation losses a trial logged, in order."""
    return [
        float(x)
        for x in re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", (job / "hydra_train.log").read_text())
    ]


def test_second_trial_in_one_process_reports_its_own_worse_best(tiny_corpus, tmp_path):
    folder = tmp_path / "grid"
    sweep("multi30k_grid", folder, tiny_corpus, "hydra.sweeper.params=null", "optimization.lr=choice([0.005],[1e-5])")
    losses = [valid_losses(folder / str(n)) for n in (0, 1)]
    assert all(len(trial) >= 2 for trial in losses)
    assert min(losses[1]) > min(losses[0])  # the second trial, in the same process, is worse
    rows = trials(folder)
    assert [(r["state"], float(r["objective"])) for r in rows] == [("COMPLETE", min(t)) for t in losses]
    # upstream: trial 1 starts with trial 0's save_checkpoint.best and logs it as its best_loss
    log = (folder / "1" / "hydra_train.log").read_text()
    logged_best = [float(x) for x in re.findall(r"valid on 'valid' subset \|.*\| best_loss ([0-9.]+)", log)]
    assert logged_best == [min(losses[1][: i + 1]) for i in range(1, len(losses[1]))]
    best = OmegaConf.load(folder / "best.yaml")
    assert best.overrides == ["optimization.lr=[0.005]"] and best.objective == min(losses[0])
    # the same tables from the command a person runs on any sweep folder
    written = (folder / "trials.csv").read_text()
    (folder / "trials.csv").unlink()
    subprocess.run(
        [sys.executable, "-m", "fairseq_vanilla.experiments.sweeps.report", str(folder)],
        check=True,
        capture_output=True,
        env=environment(),
        cwd=ROOT,
    )
    assert (folder / "trials.csv").read_text() == written


def test_search_resumes_a_killed_sweep_and_writes_results(tiny_corpus, tmp_path):
    folder = tmp_path / "search"
    folder.mkdir()
    args = command("multi30k_search", folder, tiny_corpus, "hydra.sweeper.n_trials=2", "optimization.max_update=30")
    killed = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=environment(),
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (folder / "1" / ".hydra").exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)  # trial 0 finished, trial 1 running
    killed.wait()
    first = folder / "0" / "objective.json"
    stamp = first.stat().st_mtime_ns

    proc = sweep("multi30k_search", folder, tiny_corpus, "hydra.sweeper.n_trials=2", "optimization.max_update=30")
    assert "1 of 2 trials already done" in proc.stdout + proc.stderr
    assert first.stat().st_mtime_ns == stamp  # the finished trial was not redone
    rows = trials(folder)
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert rows[1]["fail_reason"].startswith("interrupted")
    for row in (rows[0], rows[2]):
        assert float(row["objective"]) == min(valid_losses(folder / row["trial"]))
        assert int(row["updates"]) == 30 and float(row["wall_time_s"]) > 0
    searched = {
        "optimization.lr",
        "lr_scheduler.warmup_updates",
        "model.dropout",
        "criterion.label_smoothing",
        "accumulation",
        "common.seed",
    } - {"lr_scheduler.warmup_updates"}  # fixed on the command line
    assert searched <= set(rows[0])
    best = min((rows[0], rows[2]), key=lambda r: float(r["objective"]))
    saved = OmegaConf.load(folder / "best.yaml")
    assert saved.trial == int(best["trial"]) and {o.split("=")[0] for o in saved.overrides} == searched
    assert OmegaConf.load(folder / "optimization_results.yaml").best_value == float(best["objective"])
    for plot in ("optimization_history.png", "param_importances.png", "slice.png"):
        assert (folder / plot).read_bytes()[:4] == b"\x89PNG"


def test_stock_optuna_sweeper_receives_the_objective(tiny_corpus, tmp_path):
    folder = tmp_path / "stock"
    sweep(
        "multi30k_search",
        folder,
        tiny_corpus,
        "hydra/sweeper=optuna",
        "hydra.sweeper.params=null",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=1",
        "model.dropout=interval(0.1,0.3)",
    )
    best = [min(valid_losses(folder / str(n))) for n in (0, 1)]
    assert OmegaConf.load(folder / "optimization_results.yaml").best_value == min(best)


def test_parallel_launchers_record_a_diverged_trial_and_go_on(tiny_corpus, tmp_path):
    folder = tmp_path / "joblib"
    sweep(
        "multi30k_search",
        folder,
        tiny_corpus,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.params=null",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.seed=5",
        "optimization.lr=choice([0.005],[1e30],[0.004])",
    )
    rows = {r["optimization.lr"]: r for r in trials(folder)}
    assert rows["[1e+30]"]["state"] == "FAIL"
    assert rows["[1e+30]"]["fail_reason"].startswith("diverged (FloatingPointError")
    ok = rows["[0.005]"]
    assert ok["state"] == "COMPLETE" and float(ok["objective"]) == min(valid_losses(folder / ok["trial"]))


def test_submitit_local_launcher(tiny_corpus, tmp_path):
    folder = tmp_path / "submitit"
    sweep("multi30k_tpe", folder, tiny_corpus, "hydra/launcher=submitit_local", "hydra.sweeper.n_trials=2")
    rows = trials(folder)
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    for row in rows:
        assert float(row["objective"]) == min(valid_losses(folder / row["trial"]))
    assert (folder / ".submitit").is_dir()


def test_every_trial_failed_exits_nonzero(tiny_corpus, tmp_path):
    folder = tmp_path / "diverged"
    proc = sweep(
        "multi30k_search", folder, tiny_corpus, "hydra.sweeper.n_trials=2", "optimization.lr=[1e30]", check=False
    )
    assert proc.returncode != 0
    assert "every trial of the sweep" in proc.stderr and "failed (2 trials)" in proc.stderr
    rows = trials(folder)
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"]
    assert all(r["fail_reason"] == "diverged (FloatingPointError: gradients are Nan/Inf)" for r in rows)


def test_unknown_search_parameter_is_refused_before_any_trial(tiny_corpus, tmp_path):
    folder = tmp_path / "typo"
    proc = sweep("multi30k_search", folder, tiny_corpus, "model.dropoutt=interval(0.1,0.3)", check=False)
    assert proc.returncode != 0
    assert "model.dropoutt name no field of the config" in proc.stderr
    assert str(ROOT / "examples" / "hydra" / "multi30k_search.yaml") in proc.stderr
    assert not folder.exists()  # refused before the sweep folder, let alone a trial


def test_direction_follows_the_checkpoint_metric_and_reasons_name_the_divergence():
    from fairseq_vanilla.experiments.sweeps.sweeper import failure_reason, study_direction

    bleu = OmegaConf.create({"checkpoint": {"best_checkpoint_metric": "bleu", "maximize_best_checkpoint_metric": True}})
    assert study_direction("auto", bleu) == "maximize"
    assert study_direction("auto", OmegaConf.create({"checkpoint": {}})) == "minimize"
    with pytest.raises(ValueError, match="contradicts checkpoint.best_checkpoint_metric=bleu"):
        study_direction("minimize", bleu)
    try:
        try:
            raise FloatingPointError("Minimum loss scale reached (0.0001).")
        except FloatingPointError:
            raise StopIteration from None  # what fairseq's NaN detector raised while handling it
    except StopIteration as error:
        assert failure_reason(error) == "diverged (FloatingPointError: Minimum loss scale reached (0.0001).)"
    assert failure_reason(RuntimeError("CUDA out of memory. Tried")).startswith("out of memory (RuntimeError")


def test_upstream_hydra_main_drops_the_objective_and_the_repaired_one_returns_it():
    import types

    from fairseq_cli import hydra_train

    from fairseq_vanilla.fairseq_fixes import hydra_objective

    hydra_objective.install()
    repaired = hydra_train.hydra_main.__wrapped__
    upstream_code = hydra_train.fairseq_vanilla_original_hydra_main_code
    assert upstream_code.co_name == "hydra_main" and "_hydra_main" in upstream_code.co_names
    trial = {"_hydra_main": lambda cfg: 4.25}  # what _hydra_main computed for the sweeper
    assert types.FunctionType(upstream_code, trial)(None) is None
    assert types.FunctionType(repaired.__code__, trial)(None) == 4.25


def test_a_save_dir_every_trial_would_share_is_refused_before_any_trial(tiny_corpus, tmp_path):
    """A new user's `checkpoint.save_dir=/x` on a sweep: trial 1 would resume trial 0's checkpoint_last.pt (fairseq's
    'dataloader mismatch'); refused, naming the override, before the sweep folder exists."""
    from omegaconf import OmegaConf

    from fairseq_vanilla.experiments.sweeps.sweeper import shared_save_dir

    shared = tmp_path / "shared-ckpt"
    folder = tmp_path / "shared"
    proc = sweep("multi30k_search", folder, tiny_corpus, f"checkpoint.save_dir={shared}", check=False)
    assert proc.returncode != 0 and f"checkpoint.save_dir={shared}: every trial of the sweep" in proc.stderr
    assert not folder.exists() and not shared.exists()

    def config(save_dir, **more):
        return OmegaConf.create({"checkpoint": {"save_dir": save_dir, **more}})

    assert shared_save_dir(config("/x/ckpt")) == "/x/ckpt"
    assert shared_save_dir(config("${hydra:runtime.output_dir}/checkpoints")) is None  # the config's own default
    assert shared_save_dir(config("/x/${hydra:job.num}")) is None
    assert shared_save_dir(config("/x/ckpt", no_save=True)) is None  # nothing saved, nothing resumed


def test_recording_a_comparison_never_overwrites_a_foreign_file(tmp_path):
    from fairseq_vanilla.experiments.sweeps import tables

    (tmp_path / "random_vs_grid.json").write_text('{"my": "notes"}\n')
    with pytest.raises(SystemExit, match=f"^error: --out {tmp_path / 'random_vs_grid.json'}: exists and is not"):
        tables.main(["record", "--random", "r1", "--grid", "g1", "--out", str(tmp_path)])  # before any sweep is read
    assert (tmp_path / "random_vs_grid.json").read_text() == '{"my": "notes"}\n'
