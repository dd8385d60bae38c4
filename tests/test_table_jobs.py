"""What a table job was made from (experiments/table/fingerprint.py), one driver per job (locks.py), and the driver's
children ending with it (stages.py): library cases and the driver on a job finished before records were kept. No
case trains: a training is a sleeping child, a corpus a few files."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fairseq_vanilla.experiments.table import fingerprint as F
from fairseq_vanilla.experiments.table import jobs as J
from fairseq_vanilla.experiments.table import locks as L
from fairseq_vanilla.experiments.table import spec as T
from tests.conftest import ROOT
from tests.test_table import job_that_trains, signal_once_training, training_is_gone

TABLE3 = ROOT / "examples" / "table3" / "table3.yaml"
COMMITTED = ROOT / "examples" / "table3" / "results" / "multi30k-1200"  # one finished row: base seed 1
STAGES = "fairseq_vanilla.experiments.table.stages"


def corpus(folder: Path, word: str) -> Path:
    """A prepared folder the driver accepts, whose binarised data is one dictionary word and a few bytes."""
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "pipeline.txt").write_text("src=en\ntgt=de\n")
    (folder / "bin" / "splits.tsv").write_text("train\t1\n")
    for lang in ("en", "de"):
        (folder / "bin" / f"dict.{lang}.txt").write_text(f"{word} 1\n")
        (folder / "bin" / f"train.en-de.{lang}.bin").write_bytes(b"\x04\x00")
    return folder


def base_row():
    table = T.load_table(str(TABLE3))
    return table, next(r for r in table["rows"] if r["id"] == "base")


def test_data_fingerprint_is_the_data_fairseq_reads(tmp_path):
    a, b = corpus(tmp_path / "a", "haus"), corpus(tmp_path / "b", "haus")
    assert F.data_fingerprint(str(a / "bin")) == F.data_fingerprint(str(b / "bin"))  # the same data, elsewhere
    (b / "bin" / "preprocess.log").write_text("made at another time\n")
    (b / "bin" / "stage.txt").write_text("option ops=300\n")
    assert F.data_fingerprint(str(a / "bin")) == F.data_fingerprint(str(b / "bin"))  # logs and records do not count
    (b / "bin" / "train.en-de.de.bin").write_bytes(b"\x05\x00")  # one token id changed, same size
    assert F.data_fingerprint(str(a / "bin")) != F.data_fingerprint(str(b / "bin"))
    assert F.data_fingerprint(str(tmp_path / "none")) == "absent"


def test_what_differs_is_said_in_words(tmp_path):
    table, row = base_row()
    now = J.identity(table, row, 1, str(corpus(tmp_path / "a", "haus")), "multi30k")
    assert F.differences(now, now) == []
    other = J.identity(table, row, 1, str(corpus(tmp_path / "b", "hund")), "multi30k-1200")
    found = F.differences(other, now)
    assert found[0] == (
        f"on data {tmp_path}/b/bin (fingerprint {other['data_fingerprint']}), not {tmp_path}/a/bin "
        f"(fingerprint {now['data_fingerprint']})"
    )
    assert found[1] == "at scale multi30k-1200, not multi30k"
    assert found[2] == "with other flags (--lr 1 then, 0.5 now; --max-update 1200 then, 2500 now)"


def legacy_job(work: Path, data: Path, root: str, scale: str, flags) -> None:
    """A job folder made before records were kept: Hydra's overrides and a train.log of two sittings."""
    (work / ".hydra").mkdir(parents=True)
    (work / ".hydra" / "overrides.yaml").write_text(f"- job=base/seed1\n- scale='{scale}'\n- threads=1\n")
    command = [f"{root}/.venv/bin/fairseq-train", f"{data}/bin", "--user-dir", f"{root}/fairseq_vanilla", *flags,
               "--save-dir", str(work / "checkpoints")]  # fmt: skip
    sitting = "$ " + shlex.join(command) + "\n2026-12-01 10:00:00 | INFO | fairseq_cli.train | start\n"
    (work / "train.log").write_text(sitting * 2)


def test_a_job_folder_without_fingerprint_is_judged_by_its_train_log(tmp_path):
    """A legacy folder agrees with the same data and flags (even from another copy of the repository, where the
    same folder inside it has another path); other data, scale or flags are named."""
    table, row = base_row()
    a, b = corpus(tmp_path / "a", "haus"), corpus(tmp_path / "b", "hund")
    now = J.identity(table, row, 1, str(a), "multi30k")
    work = tmp_path / "out" / "base" / "seed1"
    legacy_job(work, a, "/elsewhere/repo", "multi30k", [*now["criterion"], *now["flags"]])
    assert [r["data"] for r in F.recorded(str(work))] == [f"{a}/bin"] * 2
    F.check_job_folder(str(work), now, "base/seed1", "out")
    with pytest.raises(T.TableError, match=r"job base/seed1 was trained on data .*/a/bin, not .*/b/bin; use another"):
        F.check_job_folder(str(work), J.identity(table, row, 1, str(b), "multi30k"), "base/seed1", "out")
    with pytest.raises(T.TableError, match=r"at scale multi30k, not multi30k-1200; with other flags \(--lr 0.5"):
        F.check_job_folder(str(work), J.identity(table, row, 1, str(a), "multi30k-1200"), "base/seed1", "out")
    moved = dict(now, data=str(ROOT / "runs" / "m" / "bin"))  # the repository copied: /elsewhere/repo → ROOT
    flags = [*now["criterion"], *now["flags"]]
    legacy_job(tmp_path / "copy", Path("/elsewhere/repo/runs/m"), "/elsewhere/repo", "multi30k", flags)
    assert not [d for then in F.recorded(str(tmp_path / "copy")) for d in F.differences(then, moved) if "data" in d]


def test_a_result_finished_before_records_is_done_for_its_data_only(tmp_path):
    """The driver on a result file without fingerprint (its command names the data): the same --data reports it
    done and trains nothing; another --data is refused in one line, and nothing starts."""
    a, b = corpus(tmp_path / "a", "haus"), corpus(tmp_path / "b", "hund")
    shutil.copytree(COMMITTED, tmp_path / "results")
    result = tmp_path / "results" / "base-seed1.json"
    made = json.loads(result.read_text())
    made["command"] = made["command"].replace("/work/main/runs/multi30k/bin", f"{a}/bin")
    assert "fingerprint" not in made and f"{a}/bin" in made["command"]
    result.write_text(json.dumps(made))
    for prepared in (a, b):  # the references a rebuild reads
        (prepared / "raw").mkdir()
        (prepared / "raw" / "valid.de").write_text("ein satz\n" * len(made["hypotheses"]))

    def driver(data):
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "table3.sh"), "--data", str(data), "--out", str(tmp_path / "work"),
             "--results", str(tmp_path / "results"), "--scale", "multi30k-1200", "--rows", "base", "--seeds", "1"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    other = driver(b)
    assert other.returncode == 2 and "done already" not in other.stdout and not (tmp_path / "work").exists()
    assert other.stderr.splitlines()[-1].startswith(f"error: {result} was made on data {a}/bin, not {b}/bin")
    same = driver(a)
    assert same.returncode == 0, same.stderr[-2000:]
    assert "1 jobs, 1 done already" in same.stdout and "job(s) through hydra" not in same.stdout
    assert json.loads(result.read_text()) == made  # read, not rewritten


def hold_lock(work: Path) -> subprocess.Popen:
    """Another process that holds the lock of ``work`` until it is killed (its pid is on its first line)."""
    code = (
        "import sys, time; from fairseq_vanilla.experiments.table.locks import lock_jobs; "
        f"lock_jobs([{str(work)!r}]); print('held', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_is_refused_and_a_dead_ones_cleared(tmp_path, capsys):
    work = tmp_path / "out" / "base" / "seed1"
    holder = hold_lock(work)
    try:
        text = Path(L.lock_path(str(work))).read_text()
        held_by = rf"seed1\.lock: its job is being run by another driver \(pid {holder.pid}\)"
        with pytest.raises(T.TableError, match=held_by):
            L.lock_jobs([str(tmp_path / "out" / "other" / "seed1"), str(work)])
        assert Path(L.lock_path(str(work))).read_text() == text  # untouched
        assert not Path(L.lock_path(str(tmp_path / "out" / "other" / "seed1"))).exists()  # the one it took, let go
    finally:
        holder.kill()  # SIGKILL: no clean-up of its own, the file stays
        holder.wait()
    assert Path(L.lock_path(str(work))).exists()
    held = L.lock_jobs([str(work)])
    assert f"cleared a stale lock: its driver (pid {holder.pid}) is no longer running" in capsys.readouterr().out
    assert Path(L.lock_path(str(work))).read_text().split()[0] == str(os.getpid())
    L.release(held)
    assert not Path(L.lock_path(str(work))).exists()


@pytest.mark.parametrize("launcher", ["in the jobs process", "in a worker process"])
def test_sigkill_of_the_driver_ends_the_training(tmp_path, launcher):
    """SIGKILL of the driver (no handler can run): its jobs process gets SIGTERM from the kernel and stops the
    training it runs (Hydra's basic launcher) or, when a worker runs it (joblib), the whole group."""
    worker = job_that_trains(tmp_path)
    jobs = f"from {STAGES} import end_group_on_signal; end_group_on_signal(); "  # as jobs.py's main does
    if launcher == "in the jobs process":
        jobs += worker
    else:
        jobs += f"import subprocess, sys; subprocess.run([sys.executable, '-c', {worker!r}])"
    driver = (
        f"import os, sys; from {STAGES} import run_forwarding_sigterm; "
        f"sys.exit(run_forwarding_sigterm([sys.executable, '-c', {jobs!r}], dict(os.environ)))"
    )
    started = time.time()
    assert signal_once_training(driver, tmp_path, signal.SIGKILL) == -signal.SIGKILL
    assert training_is_gone(tmp_path, wait=20), "the training outlived the driver"
    assert time.time() - started < 30
