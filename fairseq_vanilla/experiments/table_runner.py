"""Run a table of variations: every (row, seed) is a resumable job of stages — train (stock fairseq-train, resumes
from its checkpoint_last.pt), validate (fairseq-validate: dev perplexity), decode (scripts/generate.sh) — that ends
by writing one small result file (command, flags, versions, figures, hypotheses). A job whose result file exists is
never run again, so the table can be built over several sittings and rebuilt from the result files alone.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

from ..evaluation.significance import corpus_scores, paired_bootstrap, perplexity
from ..pipeline import alignment_agreement, atomic_write, read_lines, read_settings
from . import table as T

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER_DIR = os.path.join(ROOT, "fairseq_vanilla")
CRITERIA = {"vanilla_transformer_align": ("vanilla_label_smoothed_cross_entropy_with_alignment", ["--load-alignments"])}
DEFAULT_CRITERION = ("vanilla_label_smoothed_cross_entropy", [])


def binary(name: str) -> str:
    """A fairseq console script: the running interpreter's own (a venv's) first, else PATH's."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def log(message: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", flush=True)


def run(cmd: List[str], logfile: str, threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(logfile, "a", encoding="utf-8") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        with open(logfile, encoding="utf-8", errors="replace") as f:
            tail = f.readlines()[-15:]
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}); log {logfile}:\n{''.join(tail)}")


def versions() -> Dict[str, str]:
    import fairseq
    import sacrebleu
    import torch

    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"torch": torch.__version__, "fairseq": fairseq.__version__, "sacrebleu": sacrebleu.__version__,
            "fairseq_vanilla_commit": commit, "python": sys.version.split()[0]}


def data_dir(prepared: str, row: Dict[str, Any], kind: str) -> str:
    """The binarised data of a row: ``bin`` of the prepared folder, or the row's ``data`` (relative to it)."""
    folder = os.path.normpath(os.path.join(prepared, row.get("data") or "bin"))
    dictionary = os.path.join(folder, "input0", "dict.txt") if kind == "classification" else None
    has_dict = os.path.isfile(dictionary) if dictionary else (
        os.path.isdir(folder) and any(n.startswith("dict.") for n in os.listdir(folder)))
    if not has_dict:
        made_by = {"bin-align": "scripts/prepare-alignments.sh"}.get(row.get("data"), "a prepare script")
        raise T.TableError(f"{folder}: no binarised data with a dictionary there (made by {made_by})")
    return folder


def train(work: str, train_cmd: List[str], threads: int, label: str) -> float:
    """Stage 1: fairseq-train (which resumes from its checkpoint_last.pt); returns the seconds spent, all sittings."""
    done, seconds_file = os.path.join(work, "train.done"), os.path.join(work, "train_seconds.txt")
    if not os.path.exists(done):
        log(f"{label}: train → {work}/train.log")
        start = time.time()
        try:
            run(train_cmd, os.path.join(work, "train.log"), threads)
        finally:
            with open(seconds_file, "a") as f:
                f.write(f"{time.time() - start:.1f}\n")
        open(done, "w").close()
    return sum(float(x) for x in read_lines(seconds_file))


def validate(work: str, cmd: List[str], threads: int, label: str) -> str:
    """Stage 2: fairseq-validate once; returns its log."""
    valid_log = os.path.join(work, "validate.log")
    if not os.path.exists(valid_log + ".done"):
        log(f"{label}: validate")
        open(valid_log, "w").close()
        run(cmd, valid_log, threads)
        os.rename(valid_log, valid_log + ".done")
    return valid_log + ".done"


def run_job(table: Dict[str, Any], row: Dict[str, Any], seed: int, args, threads: int,
            base_hyps: Optional[List[str]] = None) -> Dict[str, Any]:
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
    train_cmd = [binary("fairseq-train"), data, "--user-dir", USER_DIR, "--criterion", criterion, *extra, *flags,
                 "--save-dir", ckpt_dir]
    result = {"table": table["name"], "id": row["id"], "row": row["row"], "variant": row["variant"], "seed": seed,
              "scale": args.scale, "train_seconds": train(work, train_cmd, threads, label)}
    train_log = os.path.join(work, "train.log")
    result.update(params=_params(train_log), updates=_last_int(train_log, "num_updates"))
    if kind == "classification":
        result.update(evaluate_classification(work, data, ckpt_dir, threads, label))
    else:
        result.update(evaluate_translation(table, row, work, data, ckpt_dir, criterion, extra, args, threads, label,
                                           base_hyps))
    result.update(command=shlex.join(train_cmd), flags=flags, versions=versions())
    path = os.path.join(args.results, T.result_name(row["id"], seed))
    with atomic_write(path) as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    figures = ", ".join(f"{k} {result[k]:.4g}" for k in ("ppl", "bleu", "chrf", "accuracy_valid", "accuracy_test")
                        if k in result)
    log(f"{label}: {figures} → {path}")
    return result


def evaluate_translation(table, row, work, data, ckpt_dir, criterion, extra, args, threads, label, base_hyps):
    """Dev perplexity (fairseq-validate) and dev BLEU/chrF of beam search (scripts/generate.sh), the hypotheses, and
    the paired bootstrap against the base row's hypotheses."""
    ckpt = os.path.join(ckpt_dir, "checkpoint_last.pt")
    symbols = T.row_symbols(table, row, args.scale)
    decode = table["decode"]
    valid_log = validate(work, [binary("fairseq-validate"), data, "--user-dir", USER_DIR, "--path", ckpt, "--task",
                                "translation", "--valid-subset", decode["split"], "--criterion", criterion, *extra,
                                "--label-smoothing", str(symbols["eps_ls"]), "--max-tokens", "4096",
                                "--num-workers", "0"], threads, label)
    nll = _last_float(valid_log, "nll_loss")
    gen_dir = os.path.join(work, decode["split"])
    if not os.path.isdir(gen_dir):
        log(f"{label}: decode {decode['split']} (beam {decode['beam']}, lenpen {decode['lenpen']})")
        run(["bash", os.path.join(ROOT, "scripts", "generate.sh"), "--data", args.data, "--path", ckpt, "--out", gen_dir,
             "--split", decode["split"], "--beam", str(decode["beam"]), "--lenpen", str(decode["lenpen"])],
            os.path.join(work, "generate.log"), threads)
    pipeline = read_settings(os.path.join(args.data, "bin", "pipeline.txt"))
    lower = pipeline.get("lower") == "1"
    splits = dict(line.split("\t") for line in read_lines(os.path.join(args.data, "bin", "splits.tsv")))
    ref_file = os.path.join(args.data, "raw", f"{decode['split']}.{pipeline['tgt']}")
    hyps, refs = read_lines(os.path.join(gen_dir, "hyp.txt"), allow_empty_file=True), read_lines(ref_file)
    scores = corpus_scores(hyps, refs, lowercase=lower)
    agreement = alignment_error(work, data, ckpt, os.path.join(args.data, "align", f"{decode['split']}.align"),
                                decode["split"], threads, label)
    return {**agreement,
        "symbols": symbols, "arch": row.get("arch") or "vanilla_transformer", "ppl": perplexity(nll), "nll_loss": nll,
        "bleu": scores["bleu"], "chrf": scores["chrf"],
        "bleu_tokenised": _tokenised_bleu(os.path.join(gen_dir, "bleu.txt"), lower),
        "decode": decode, "dev_set": splits.get(decode["split"], decode["split"]), "lowercase": lower,
        "hypotheses": hyps,
        "significance": None if base_hyps is None or row["row"] == "base"
        else paired_bootstrap(base_hyps, hyps, refs, lowercase=lower),
    }


def alignment_error(work, data, ckpt, reference, split, threads, label) -> Dict[str, float]:
    """Where the prepared folder has reference links (scripts/prepare-alignments.sh), the agreement of the model's
    alignment (``--print-alignment`` on the reference translation) with them: precision, recall, AER."""
    if not os.path.isfile(reference):
        return {}
    out = os.path.join(work, f"{split}.align.out")
    if not os.path.exists(out):
        log(f"{label}: alignment of the reference translations (--score-reference --print-alignment)")
        run([binary("fairseq-generate"), data, "--user-dir", USER_DIR, "--path", ckpt, "--gen-subset", split,
             "--score-reference", "--print-alignment", "--max-tokens", "4096", "--results-path", out + ".tmp"],
            os.path.join(work, "align.log"), threads)
        os.replace(os.path.join(out + ".tmp", f"generate-{split}.txt"), out)
    found = alignment_agreement(out, reference)
    return {"alignment": {k: found[k] for k in ("precision", "recall", "aer")}}


def evaluate_classification(work, data, ckpt_dir, threads, label):
    """Validation and test accuracy of the best checkpoint (by validation accuracy), fairseq-validate."""
    valid_log = validate(work, [binary("fairseq-validate"), data, "--user-dir", USER_DIR, "--task", "imdb_classification",
                                "--path", os.path.join(ckpt_dir, "checkpoint_best.pt"), "--valid-subset", "valid,test",
                                "--batch-size", "64", "--num-workers", "0"], threads, label)
    text = open(valid_log, encoding="utf-8", errors="replace").read()
    acc = {}
    for subset in ("valid", "test"):
        found = re.findall(rf"valid on '{subset}' subset .*?accuracy ([0-9.]+)", text)
        if not found:
            raise RuntimeError(f"{valid_log}: no accuracy for subset {subset}")
        acc[f"accuracy_{subset}"] = float(found[-1])
    return acc


def _last_float(path: str, key: str) -> float:
    """The last figure after ``key`` in a fairseq log (``key 4.2`` or ``key=4.2``)."""
    found = re.findall(re.escape(key) + r"[ =|]*([0-9.]+)", open(path, encoding="utf-8", errors="replace").read())
    if not found:
        raise RuntimeError(f"{path}: no '{key}' figure found")
    return float(found[-1].rstrip("."))


def _tokenised_bleu(bleu_txt: str, lower: bool) -> float:
    """generate.sh's fairseq-score BLEU on Moses-tokenised text (the lower-cased line for lower-cased data)."""
    want = "tokenised, lower-cased:" if lower else "fairseq-score, tokenised:"
    for line in read_lines(bleu_txt):
        if want in line:
            return float(re.search(r"BLEU4 = ([0-9.]+)", line).group(1).rstrip("."))
    raise RuntimeError(f"{bleu_txt}: no '{want}' line")


def _last_int(path: str, key: str) -> int:
    return int(_last_float(path, key))


def _params(train_log: str) -> int:
    found = re.findall(r"num\. shared model params: ([\d,]+)", open(train_log, encoding="utf-8", errors="replace").read())
    if not found:
        raise RuntimeError(f"{train_log}: fairseq-train did not log its parameter count")
    return int(found[-1].replace(",", ""))


def rebuild(table: Dict[str, Any], results_dir: str, out_dirs: List[str]) -> str:
    """Write <name>.md and <name>.csv into each of ``out_dirs`` from the result files; returns the Markdown."""
    results = T.load_results(results_dir)
    kind = table["kind"]
    lines = T.classification_rows(table, results) if kind == "classification" else T.table_rows(table, results)
    md, csv_text = T.to_markdown(lines, kind), T.to_csv(lines, kind)
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
    p.add_argument("--results", help="result files and the table built from them (default: results/SCALE/ beside the "
                                      "table file; tracked in git)")
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
            print(f"error: {os.path.join(args.results, T.result_name(row['id'], seed))} was made with other flags than "
                  f"{args.table} now gives for row {row['id']} at scale {args.scale}; move it away to run the row again",
                  file=sys.stderr)
            return 2
    todo = [(row, seed) for row, seed in jobs if (row["id"], seed) not in done]
    log(f"{table['name']} at scale {args.scale}: {len(jobs)} jobs, {len(jobs) - len(todo)} done already "
        f"(results: {args.results})")
    base_runs = [(r, s) for r, s in todo if r["row"] == "base"]
    for row, seed in base_runs:  # the base first: every other row is tested against its hypotheses
        run_job(table, row, seed, args, args.threads)
    base = T.load_results(args.results).get(("base", 1))
    base_hyps = base["hypotheses"] if base else None
    rest = [(r, s) for r, s in todo if r["row"] != "base"]
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
