"""Run a table of variations: every (row, seed) is a job (:mod:`.jobs`: train, validate, decode, one result
file), and the jobs run through Hydra's launchers, as every set of trainings in this project does: basic (one after
the other), joblib (``--jobs K`` at once on this machine), or any other (``--launcher submitit_slurm``, or the
project's ``slurm_gpu``) with ``--hydra`` overrides. A job whose result file exists is never run again, so the table
can be built over several sittings and rebuilt from the result files alone; but a result file or job folder made from
other data, at another scale or with other flags (:mod:`.fingerprint`) stops the driver, saying what differs, before
anything runs. Each job run is locked against a second driver (:mod:`.locks`); the driver's children end with it.
"""

import argparse
import os
import re
import sys
from typing import Any, Dict, List, Tuple

from . import fingerprint as F
from . import locks as L
from . import spec as T
from .jobs import TABLE3, data_dir, identity, job_name, rebuild, results_dir, work_dir
from .stages import ROOT, log, run_forwarding_sigterm
from .tasks import task_of


def hydra_value(value: str) -> str:
    """A path as a quoted value of Hydra's override grammar (commas, spaces, '=' and quotes kept literal)."""
    # a quote is escaped, and so is each backslash of a run that ends at a quote or at the end of the value
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), value)
    return "'" + escaped + "'"


def launch(jobs: List[Tuple[Dict[str, Any], int]], args, threads: int, n_jobs: int) -> int:
    """Run ``jobs`` as one Hydra multirun of :mod:`.jobs` (``n_jobs`` at once, ``threads`` each); returns its
    exit status."""
    launcher = args.launcher or ("joblib" if n_jobs > 1 else "basic")
    overrides = [
        "job=" + ",".join(job_name(row["id"], seed) for row, seed in jobs),
        "table=" + hydra_value(args.table),
        "data=" + hydra_value(args.data),
        "out=" + hydra_value(args.out),
        "scale=" + hydra_value(args.scale),
        "results_dir=" + hydra_value(args.results),
        f"threads={threads}",
        "hydra/launcher=" + launcher,
        "hydra.sweep.dir=" + hydra_value(args.out),  # Hydra's job folder is the job's work folder, OUT/ROW/seedN
        "hydra.sweep.subdir=${job}",
        "hydra.searchpath=[" + hydra_value("file://" + os.path.join(ROOT, "examples", "hydra")) + "]",
        *([f"hydra.launcher.n_jobs={n_jobs}"] if launcher == "joblib" else []),
        *args.hydra,
    ]
    log(f"{len(jobs)} job(s) through hydra/launcher={launcher}, {threads} thread(s) each")
    cmd = [sys.executable, "-m", "fairseq_vanilla.experiments.table.jobs", "-m", *overrides]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return run_forwarding_sigterm(cmd, env)  # SIGTERM here stops the jobs and their trainings, none orphaned


def unfinished(jobs: List[Tuple[Dict[str, Any], int]], done, table: Dict[str, Any], args) -> List:
    """The jobs without a result file, after checking that each result file and each job folder there is was made
    from what the command asks for now (a :class:`.TableError` saying what differs, in one line, if not)."""
    todo = []
    for row, seed in jobs:
        now, made = identity(table, row, seed, args.data, args.scale), done.get((row["id"], seed))
        if made is not None:
            found = F.differences(F.result_identity(made), now)
            if found:
                path = os.path.join(args.results, T.result_name(row["id"], seed))
                raise T.TableError(
                    f"{path} was made {'; '.join(found)}, not as {args.table} now gives row {row['id']} at scale "
                    f"{args.scale}; move it away to run the row again, or give another --results"
                )
            continue
        data_dir(args.data, row, table)
        F.check_job_folder(work_dir(args.out, row["id"], seed), now, job_name(row["id"], seed), args.out)
        todo.append((row, seed))
    return todo


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="run a table of variations (Table 3 by default); finished rows are skipped")
    p.add_argument("--table", default=TABLE3)
    p.add_argument("--data", required=True, help="a prepare script's --out (bin/, raw/, bin/pipeline.txt)")
    p.add_argument("--out", required=True, help="work folder (checkpoints, logs, hypotheses)")
    p.add_argument("--rows", help="comma-separated row groups or ids (default: the table's default_rows)")
    p.add_argument("--seeds", type=int, help="seeds of the base row (default: the table's)")
    p.add_argument("--other-seeds", type=int, help="seeds of every other row (default: the table's)")
    p.add_argument("--scale", default="multi30k")
    p.add_argument("--jobs", type=int, default=1, help="trainings at once; the threads are shared among them")
    p.add_argument("--launcher", help="Hydra launcher: basic, joblib (the default if --jobs > 1), submitit_slurm, ...")
    p.add_argument("--hydra", action="append", default=[], help="a Hydra override, e.g. hydra.launcher.partition=gpu")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    p.add_argument(
        "--results",
        help="result files and the table built from them (default: results/SCALE/ beside the "
        "table file; tracked in git)",
    )
    args = p.parse_args(argv)
    for flag in ("seeds", "other_seeds", "jobs", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            print(f"error: --{flag.replace('_', '-')}: must be at least 1, got {value}", file=sys.stderr)
            return 2
    try:
        selection = None if args.rows is None else [r.strip() for r in args.rows.split(",") if r.strip()]
        if selection is not None and not selection:
            raise T.TableError(
                f"--rows: empty ({args.rows!r}): give row groups or ids (e.g. base,A), or leave --rows out for the "
                "table's default rows"
            )
        for flag, folder in (("--out", args.out), ("--results", args.results)):
            if folder is not None and not folder.strip():
                raise T.TableError(f"{flag}: empty: give a folder")
            if folder is not None and os.path.lexists(folder) and not os.path.isdir(folder):
                raise T.TableError(f"{flag}: {folder}: exists and is not a folder")
        table = T.load_table(args.table)
        rows = T.select_rows(table, selection)
        T.check_scale(table, args.scale)
        missing = task_of(table).missing_inputs(table, args.data)
        if missing:
            raise T.TableError(f"{args.data}/{missing[0]} missing: --data must be the --out of a prepare script")
        args.out, args.data, args.table = map(os.path.abspath, (args.out, args.data, args.table))
        args.results = results_dir(table, args.results, args.scale)
        done = T.table_results(table, args.results, args.scale)  # every result file read and checked
    except T.TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default_seeds = table.get("seeds") or {}
    seeds = dict(
        base=args.seeds or default_seeds.get("base", 1), other=args.other_seeds or default_seeds.get("other", 1)
    )
    jobs = [(row, seed) for row in rows for seed in T.seeds_for(row, seeds["base"], seeds["other"])]
    try:
        todo = unfinished(jobs, done, table, args)
        held = L.lock_jobs([work_dir(args.out, row["id"], seed) for row, seed in todo])
    except T.TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if table.get("base"):  # the longest trainings first, so that K jobs at once end together
        todo.sort(key=lambda job: -T.row_symbols(table, job[0], args.scale)["steps"])
    log(
        f"{table['name']} at scale {args.scale}: {len(jobs)} jobs, {len(jobs) - len(todo)} done already "
        f"(results: {args.results})"
    )
    try:
        status = launch(todo, args, max(1, args.threads // max(1, args.jobs)), max(1, args.jobs)) if todo else 0
    finally:
        L.release(held)
    if status != 0:
        print(
            f"error: a job failed (exit {status}): its logs are in {args.out}/ROW/seedN/ (Hydra's: "
            f"jobs.log, .hydra/); run the same command again to go on",
            file=sys.stderr,
        )
        return 1
    print(rebuild(table, args.results, [args.out, args.results], args.data, args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
