"""Classification (a table file's ``kind: classification``: the IMDB tables): rows as runs of the classifier with their
own flags, trained with label-smoothed classification loss on ``imdb_classification``, scored by validation and test
accuracy of the best checkpoint (fairseq-validate), with each test review's predicted and true class kept."""

import json
import os
import re
import sys
from typing import Any, Dict, List, Optional, Sequence

from ....evaluation.seed_statistics import mean_std
from ....inference.split_predictions import accuracy as split_accuracy
from .. import render as R
from .. import spec as T
from ..evaluation import validate_command
from ..stages import log, read_log, run, validate
from ..task import Job, Results, Table, TableTask

COLUMNS = (
    ("run", "run", 4),
    ("changes", "changes", 4),
    ("seeds", "seeds", 4),
    ("accuracy_valid", "valid accuracy", 4),
    ("accuracy_test", "test accuracy", 4),
    ("delta_accuracy", "Δ test accuracy", 4),
    ("delta_accuracy_ci", "95 % interval", 4),
    ("verdict", "verdict (seeds)", 4),
    ("p_seeds", "p (seeds)", 3),
    ("verdict_holm", "verdict (Holm)", 4),
    ("params_millions", "params ×10⁶", 1),
    ("train_minutes", "train min", 1),
    ("epochs_to_best", "epochs to best valid (seeds)", 0),
    ("reference_test_accuracy", "users' test accuracy", 4),
)


def criterion(row: Dict[str, Any]) -> List[str]:
    """The label-smoothed classification loss on the IMDB task, for every row."""
    return ["--criterion", "vanilla_label_smoothed_classification", "--task", "imdb_classification"]


def has_dictionary(folder: str) -> bool:
    """A binarised folder with the reviews' dictionary (``input0/dict.txt``)."""
    return os.path.isfile(os.path.join(folder, "input0", "dict.txt"))


def evaluate(job: Job) -> Dict[str, Any]:
    """Validation and test accuracy of the best checkpoint (by validation accuracy), fairseq-validate; and each test
    review's predicted and true class (:mod:`fairseq_vanilla.inference.split_predictions`), so that the test accuracy
    can be recomputed from the result file (it must equal fairseq-validate's to its 4 printed decimals)."""
    ckpt = os.path.join(job.checkpoints, "checkpoint_best.pt")
    command = validate_command(job.data, ckpt, "imdb_classification", "valid,test", ["--batch-size", "64"])
    valid_log = validate(job.work, command, job.threads, job.label)
    text = read_log(valid_log)
    acc = {}
    for subset in ("valid", "test"):
        found = re.findall(rf"valid on '{subset}' subset .*?accuracy ([0-9.]+)", text)
        if not found:
            raise RuntimeError(f"{valid_log}: no accuracy for subset {subset}")
        acc[f"accuracy_{subset}"] = float(found[-1])
    predictions = os.path.join(job.work, "test_predictions.json")
    if not os.path.exists(predictions):
        log(f"{job.label}: test predictions → {predictions}")
        module = "fairseq_vanilla.inference.split_predictions"
        where = ["--path", ckpt, "--data", job.data, "--subset", "test", "--out", predictions]
        run([sys.executable, "-m", module, *where], os.path.join(job.work, "predict.log"), job.threads)
    with open(predictions, encoding="utf-8") as f:
        record = json.load(f)
    recomputed = split_accuracy(record)
    if abs(recomputed - acc["accuracy_test"]) > 1e-4:
        raise RuntimeError(
            f"{predictions}: accuracy {recomputed:.4f} from the predictions, "
            f"{acc['accuracy_test']:.4f} from fairseq-validate"
        )
    return {**acc, "test_predictions": record}


def complete(table: Table, found: Results, results: str, prepared: str) -> None:
    """Nothing: a classification result is whole when its job ends (its verdicts are the renderer's)."""


def epochs_to_best(curve: Sequence[Sequence[float]]) -> Optional[int]:
    """The epoch (1-based) of the first validation that reaches the curve's best accuracy, validations being once
    an epoch (fairseq's default ``--validate-interval 1``); None for an empty curve."""
    if not curve:
        return None
    best = max(accuracy for _, accuracy in curve)
    return next(i for i, (_, accuracy) in enumerate(curve, 1) if accuracy == best)


def classification_rows(table: Table, results: Results) -> List[Dict[str, Any]]:
    """One line per row with results: accuracy mean ± std over seeds, Δ test accuracy against the base's seeds with
    its 95 % interval and verdict (:func:`.render.against_base`)."""
    base_acc = [r["accuracy_test"] for r in R.seed_runs(results, T.base_id(table))]
    lines = []
    for row in table["rows"]:
        runs = R.seed_runs(results, row["id"])
        if not runs:
            continue
        test = mean_std([r["accuracy_test"] for r in runs])
        vs_base = R.against_base(table, row, base_acc, [r["accuracy_test"] for r in runs], 4)
        lines.append(
            {
                "id": row["id"],
                "run": row["variant"],
                "changes": row.get("note", ""),
                "seeds": len(runs),
                "accuracy_valid": mean_std([r["accuracy_valid"] for r in runs]),
                "accuracy_test": test,
                "delta_accuracy": vs_base["delta"],
                "delta_accuracy_ci": vs_base["interval"],
                "verdict": vs_base["verdict"],
                "p_seeds": vs_base["p"],
                "params_millions": runs[0]["params"] / 1e6,
                "train_minutes": mean_std([r["train_seconds"] / 60 for r in runs])["mean"],
                "epochs_to_best": " / ".join(str(epochs_to_best(r.get("valid_curve"))) for r in runs)
                if all(r.get("valid_curve") for r in runs)
                else None,
                "reference_test_accuracy": (row.get("paper") or {}).get("test_acc"),
            }
        )
    return R.with_holm(lines)


TASK = TableTask(
    name="classification",
    table_keys=(),
    scale_keys=("flags",),
    missing_inputs=lambda table, prepared: [],
    has_dictionary=has_dictionary,
    criterion=criterion,
    curve="accuracy",
    evaluate=evaluate,
    figures=("accuracy_valid", "accuracy_test"),
    ranges={"accuracy_valid": (0.0, 1.0), "accuracy_test": (0.0, 1.0)},
    complete=complete,
    lines=classification_rows,
    columns=lambda table: COLUMNS,
)
