"""Run a table of variations: every (row, seed) is a resumable job of stages — train (stock fairseq-train, resumes
from its checkpoint_last.pt), validate (fairseq-validate: dev perplexity), decode (scripts/generate.sh) — that ends
by writing one small result file (command, flags, versions, figures, hypotheses). A job whose result file exists is
never run again, so the table can be built over several sittings and rebuilt from the result files alone.
"""

import argparse
import json
import os
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

from ..text.io import atomic_write
from . import table as T
from . import table_render as R
from .stages import (
    ROOT,
    USER_DIR,
    binary,
    last_int,
    log,
    logged_parameter_count,
    train,
    versions,
)
from .table_evaluation import evaluate_classification, evaluate_translation

CRITERIA = {"vanilla_transformer_align": ("vanilla_label_smoothed_cross_entropy_with_alignment", ["--load-alignments"])}
DEFAULT_CRITERION = ("vanilla_label_smoothed_cross_entropy", [])


def data_dir(prepared: str, row: Dict[str, Any], kind: str) -> str:
    """The binarised data of a row: ``bin`` of the prepared folder, or the row's ``data`` (relative to it)."""
    folder = os.path.normpath(os.path.join(prepared, row.get("data") or "bin"))
    dictionary = os.path.join(folder, "input0", "dict.txt") if kind == "classification" else None
    has_dict = (
        os.path.isfile(dictionary)
        if dictionary
        else (os.path.isdir(folder) and any(n.startswith("dict.") for n in os.listdir(folder)))
    )
    if not has_dict:
        made_by = {"bin-align": "scripts/prepare-alignments.sh"}.get(row.get("data"), "a prepare script")
        raise T.TableError(f"{folder}: no binarised data with a dictionary there (made by {made_by})")
    return folder


def run_job(
    table: Dict[str, Any], row: Dict[str, Any], seed: int, args, threads: int, base_hyps: Optional[List[str]] = None
) -> Dict[str, Any]:
    """Train, validate (and for translation decode) one (row, seed); returns the result, also written to a file."""
    work = os.path.join(args.out, row["id"], f"seed{seed}")
    os.makedirs(work, exist_ok=True)
    kind = table.get("kind", "translation")
    label = f"{row['id']} seed {seed}"
    data = data_dir(args.data, row, kind)
    flags = T.train_flags(table, row, args.scale, seed)
    if kind == "classification":
        criterion, extra = "vanilla_label_smoothed_classification", ["--task", "imdb_classification"]
    else:
        criterion, extra = CRITERIA.get(row.get("arch") or "", DEFAULT_CRITERION)
    ckpt_dir = os.path.join(work, "checkpoints")
    train_cmd = [
        binary("fairseq-train"),
        data,
        "--user-dir",
        USER_DIR,
        "--criterion",
        criterion,
        *extra,
        *flags,
        "--save-dir",
        ckpt_dir,
    ]
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
    result.update(params=logged_parameter_count(train_log), updates=last_int(train_log, "num_updates"))
    if kind == "classification":
        result.update(evaluate_classification(work, data, ckpt_dir, threads, label))
    else:
        result.update(
            evaluate_translation(table, row, work, data, ckpt_dir, criterion, extra, args, threads, label, base_hyps)
        )
    result.update(command=shlex.join(train_cmd), flags=flags, versions=versions())
    path = os.path.join(args.results, T.result_name(row["id"], seed))
    with atomic_write(path) as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    figures = ", ".join(
        f"{k} {result[k]:.4g}" for k in ("ppl", "bleu", "chrf", "accuracy_valid", "accuracy_test") if k in result
    )
    log(f"{label}: {figures} → {path}")
    return result


def rebuild(table: Dict[str, Any], results_dir: str, out_dirs: List[str]) -> str:
    """Write <name>.md and <name>.csv into each of ``out_dirs`` from the result files; returns the Markdown."""
    results = T.load_results(results_dir)
    kind = table["kind"]
    lines = R.classification_rows(table, results) if kind == "classification" else R.table_rows(table, results)
    md, csv_text = R.to_markdown(lines, kind), R.to_csv(lines, kind)
    for d in out_dirs:
        os.makedirs(d, exist_ok=True)
        with atomic_write(os.path.join(d, table["name"] + ".md")) as f:
            f.write(md)
        with atomic_write(os.path.join(d, table["name"] + ".csv")) as f:
            f.write(csv_text)
    return md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="run a table of variations (Table 3 by default); finished rows are skipped")
    p.add_argument("--table", default=os.path.join(ROOT, "examples", "table3", "table3.yaml"))
    p.add_argument("--data", required=True, help="a prepare script's --out (bin/, raw/, bin/pipeline.txt)")
    p.add_argument("--out", required=True, help="work folder (checkpoints, logs, hypotheses)")
    p.add_argument("--rows", help="comma-separated row groups or ids (default: the table's default_rows)")
    p.add_argument("--seeds", type=int, help="seeds of the base row (default: the table's)")
    p.add_argument("--other-seeds", type=int, help="seeds of every other row (default: the table's)")
    p.add_argument("--scale", default="multi30k")
    p.add_argument("--jobs", type=int, default=1, help="trainings at once; the threads are shared among them")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    p.add_argument(
        "--results",
        help="result files and the table built from them (default: results/SCALE/ beside the "
        "table file; tracked in git)",
    )
    args = p.parse_args(argv)
    try:
        table = T.load_table(args.table)
        rows = T.select_rows(table, args.rows.split(",") if args.rows else None)
        T.check_scale(table, args.scale)
        for needed in ("bin/pipeline.txt", "bin/splits.tsv") if table["kind"] == "translation" else ():
            if not os.path.isfile(os.path.join(args.data, needed)):
                raise T.TableError(f"{args.data}/{needed} missing: --data must be the --out of a prepare script")
    except T.TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out, args.data = os.path.abspath(args.out), os.path.abspath(args.data)
    args.results = args.results or os.path.join(os.path.dirname(table["path"]), "results", args.scale)
    seeds = dict(base=args.seeds or table["seeds"]["base"], other=args.other_seeds or table["seeds"]["other"])
    jobs = [(row, seed) for row in rows for seed in T.seeds_for(row, seeds["base"], seeds["other"])]
    done = T.load_results(args.results)
    for row, seed in jobs:
        made = done.get((row["id"], seed))
        if made is not None and made["flags"] != T.train_flags(table, row, args.scale, seed):
            print(
                f"error: {os.path.join(args.results, T.result_name(row['id'], seed))} was made with other flags than "
                f"{args.table} now gives for row {row['id']} at scale {args.scale}; move it away to run the row again",
                file=sys.stderr,
            )
            return 2
    todo = [(row, seed) for row, seed in jobs if (row["id"], seed) not in done]
    log(
        f"{table['name']} at scale {args.scale}: {len(jobs)} jobs, {len(jobs) - len(todo)} done already "
        f"(results: {args.results})"
    )
    first = [(r, s) for r, s in todo if (r["id"], s) == ("base", 1)]
    for row, seed in first:  # base seed 1 first, on every thread: every other row is tested against its hypotheses
        run_job(table, row, seed, args, args.threads)
    base = T.load_results(args.results).get(("base", 1))
    base_hyps = base["hypotheses"] if base else None
    rest = [(r, s) for r, s in todo if (r["id"], s) != ("base", 1)]
    threads = max(1, args.threads // max(1, args.jobs))
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for _ in pool.map(lambda job: run_job(table, job[0], job[1], args, threads, base_hyps), rest):
                rebuild(table, args.results, [args.out, args.results])
    except (RuntimeError, T.TableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(rebuild(table, args.results, [args.out, args.results]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
