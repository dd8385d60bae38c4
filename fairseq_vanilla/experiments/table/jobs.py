"""One (row, seed) of a table of variations: train (stock fairseq-train, resumes from its checkpoint_last.pt),
validate (fairseq-validate: dev perplexity), decode (scripts/generate.sh), then one small result file (command, flags,
versions, figures, hypotheses) and the table rebuilt from all result files.

It is a Hydra app, so that many jobs run the way every set of trainings in this project runs: through Hydra's
launchers (basic: one after the other; joblib: several at once here; submitit: a Slurm cluster). The table driver
(:mod:`.runner`, ``scripts/table3.sh``) launches it; by hand, ``job`` is ROW/seedN, the job's work folder:

    python -m fairseq_vanilla.experiments.table.jobs -m job=base/seed2,A-h4/seed1 data=$PWD/runs/multi30k \\
        out=$PWD/runs/table3 threads=1 hydra/launcher=joblib hydra.launcher.n_jobs=2
"""

import json
import os
import re
import shlex
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import MISSING

from ...text.io import atomic_write
from . import fingerprint as F
from . import render as R
from . import spec as T
from .stages import (
    ROOT,
    USER_DIR,
    binary,
    end_group_on_signal,
    last_int,
    log,
    logged_parameter_count,
    train,
    valid_curve,
    versions,
)
from .task import Job
from .tasks import task_of

TABLE3 = os.path.join(ROOT, "examples", "table3", "table3.yaml")


@dataclass
class TableJobConfig:
    """The Hydra config of one job; the driver passes absolute paths."""

    job: str = "base/seed1"  # ROW/seedN
    table: str = TABLE3
    data: str = MISSING  # a prepare script's --out
    out: str = MISSING  # work folder: OUT/ROW/seedN
    scale: str = "multi30k"
    results_dir: Optional[str] = None  # default: results/SCALE/ beside the table file
    threads: int = 1


def job_name(row_id: str, seed: int) -> str:
    return f"{row_id}/seed{seed}"


def parse_job(job: str) -> Tuple[str, int]:
    """``A-h4/seed1`` → ("A-h4", 1)."""
    m = re.fullmatch(r"(.+)/seed(\d+)", job)
    if not m:
        raise T.TableError(f"job={job!r}: expected ROW/seedN, e.g. base/seed2")
    return m.group(1), int(m.group(2))


def results_dir(table: Dict[str, Any], results: Optional[str], scale: str) -> str:
    return os.path.abspath(results or os.path.join(os.path.dirname(table["path"]), "results", scale))


def data_dir(prepared: str, row: Dict[str, Any], table: Dict[str, Any]) -> str:
    """The binarised data of a row: ``bin`` of the prepared folder, or the row's ``data`` (relative to it), with the
    dictionary its table's task reads."""
    folder = F.data_folder(prepared, row)
    if not task_of(table).has_dictionary(folder):
        made_by = {"bin-align": "scripts/prepare-alignments.sh"}.get(row.get("data"), "a prepare script")
        raise T.TableError(f"{folder}: no binarised data with a dictionary there (made by {made_by})")
    return folder


def identity(table: Dict[str, Any], row: Dict[str, Any], seed: int, prepared: str, scale: str) -> Dict[str, Any]:
    """What determines the job (row, seed) now (:func:`.fingerprint.job_identity`)."""
    flags, data = T.train_flags(table, row, scale, seed), F.data_folder(prepared, row)
    return F.job_identity(row["id"], seed, scale, data, task_of(table).criterion(row), flags)


def work_dir(out: str, row_id: str, seed: int) -> str:
    """The work folder of a job: OUT/ROW/seedN (Hydra's job folder)."""
    return os.path.join(out, row_id, f"seed{seed}")


def run_job(table: Dict[str, Any], row: Dict[str, Any], seed: int, args, threads: int) -> Dict[str, Any]:
    """Train one (row, seed) and evaluate it as its table's task does (:attr:`.task.TableTask.evaluate`: validate,
    decode, …); returns the result, also written to a file.
    ``args`` has ``data``, ``out``, ``scale`` and ``results`` (absolute paths). A job folder made from anything else
    (other data, scale or flags: :mod:`.fingerprint`) is a :class:`TableError`; otherwise its fingerprint is recorded
    before it trains."""
    work, task = work_dir(args.out, row["id"], seed), task_of(table)
    label = f"{row['id']} seed {seed}"
    data = data_dir(args.data, row, table)
    now = identity(table, row, seed, args.data, args.scale)
    F.check_job_folder(work, now, job_name(row["id"], seed), args.out)
    F.record(work, now)
    job = Job(table, row, seed, args.scale, args.data, data, work, now["criterion"], now["flags"], threads, label)
    train_cmd = [binary("fairseq-train"), data, "--user-dir", USER_DIR, *job.criterion, *job.flags]
    train_cmd += ["--save-dir", job.checkpoints]
    result = {
        "table": table["name"],
        "id": row["id"],
        "row": row["row"],
        "variant": row["variant"],
        "seed": seed,
        "scale": args.scale,
        "train_seconds": train(work, train_cmd, threads, label),
    }
    train_log = os.path.join(work, "train.log")
    result.update(
        params=logged_parameter_count(train_log),
        updates=last_int(train_log, "num_updates"),
        # when a run learnt (to attend), not only where it ended: dev perplexity, or accuracy for a classifier
        valid_curve=valid_curve(train_log, task.curve),
    )
    result.update(task.evaluate(job))
    result.update(command=shlex.join(train_cmd), flags=job.flags, fingerprint=now, versions=versions())
    path = os.path.join(args.results, T.result_name(row["id"], seed))
    with atomic_write(path) as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    figures = ", ".join(f"{k} {result[k]:.4g}" for k in task.figures if k in result)
    log(f"{label}: {figures} → {path}")
    return result


def rebuild(table: Dict[str, Any], results: str, out_dirs: List[str], prepared: str, scale: str) -> str:
    """What the results still miss from each other (:attr:`.task.TableTask.complete`: the paired bootstraps, the FLOPs
    counts of a translation table), then <name>.md and <name>.csv into each of ``out_dirs`` from the result files (and
    the rows the table reuses from another's) in its task's lines and columns; returns the Markdown."""
    task, found = task_of(table), T.table_results(table, results, scale)
    task.complete(table, found, results, prepared)
    lines, columns = task.lines(table, found), task.columns(table)
    md, csv_text = R.to_markdown(lines, columns), R.to_csv(lines, columns)
    for d in out_dirs:
        os.makedirs(d, exist_ok=True)
        with atomic_write(os.path.join(d, table["name"] + ".md")) as f:
            f.write(md)
        with atomic_write(os.path.join(d, table["name"] + ".csv")) as f:
            f.write(csv_text)
    return md


def run(cfg) -> Dict[str, float]:
    """The job ``cfg.job`` (a finished one is only read back); returns its figures, the value a launcher reports."""
    table = T.load_table(os.path.abspath(cfg.table))
    row_id, seed = parse_job(cfg.job)
    row = next((r for r in table["rows"] if r["id"] == row_id), None)
    if row is None:
        raise T.TableError(f"{table['path']}: no row {row_id!r}")
    T.check_scale(table, cfg.scale)
    args = SimpleNamespace(  # the paths run_job reads, absolute: a launcher may run the job in another folder
        data=os.path.abspath(cfg.data),
        out=os.path.abspath(cfg.out),
        scale=cfg.scale,
        results=results_dir(table, cfg.results_dir, cfg.scale),
    )
    result = T.table_results(table, args.results, cfg.scale).get((row_id, seed))
    found = result and F.differences(F.result_identity(result), identity(table, row, seed, args.data, cfg.scale))
    if found:
        path = os.path.join(args.results, T.result_name(row_id, seed))
        raise T.TableError(f"{path} was made {'; '.join(found)}; move it away to run the job again")
    if result is None:
        result = run_job(table, row, seed, args, cfg.threads)
        rebuild(table, args.results, [args.out, args.results], args.data, cfg.scale)
    return {k: result[k] for k in task_of(table).figures if k in result}


def _hydra_app():
    import hydra
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="table_job", node=TableJobConfig)
    return hydra.main(version_base="1.3", config_path=None, config_name="table_job")(run)


if __name__ == "__main__":
    end_group_on_signal()  # the driver's SIGTERM, or its death, ends a launcher's workers and their trainings too
    _hydra_app()()
