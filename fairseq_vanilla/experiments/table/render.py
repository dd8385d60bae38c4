"""A table of variations as Markdown and CSV from its result files: the paper's columns beside ours, seed mean ± std,
ΔBLEU against the base's seeds with its 95 % interval and a verdict (training variance in the null), and the paired
bootstrap's p against base seed 1 (test-set noise); accuracy with seed spread for a classification table."""

import csv
import io
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...evaluation.seed_statistics import holm, holm_verdict, mean_std, seed_comparison
from ...models.config import head_dims
from .spec import base_id, seeds_for

# (key, Markdown heading, digits) of each column; the CSV is headed by the keys.
COLUMNS = (
    ("row", "", 2),
    ("variant", "", 2),
    ("N", "N", 2),
    ("d_model", "d_model", 2),
    ("d_ff", "d_ff", 2),
    ("h", "h", 2),
    ("d_k", "d_k", 2),
    ("d_v", "d_v", 2),
    ("P_drop", "P_drop", 2),
    ("eps_ls", "ε_ls", 2),
    ("steps", "steps", 2),
    ("seeds", "seeds", 2),
    ("ppl_dev", "PPL (dev)", 2),
    ("bleu_dev", "BLEU (dev)", 2),
    ("chrf_dev", "chrF", 2),
    ("delta_bleu", "ΔBLEU", 2),
    ("delta_bleu_ci", "95 % interval", 2),
    ("verdict", "verdict (seeds)", 2),
    ("p_seeds", "p (seeds)", 3),
    ("verdict_holm", "verdict (Holm)", 2),
    ("p_value", "p (test set)", 3),
    ("aer", "AER", 2),
    ("params_millions", "params ×10⁶", 1),
    ("train_minutes", "train min", 1),
    ("updates_per_second", "updates/s", 2),
    ("mflops_per_token", "train MFLOPs/target token", 1),
    ("device", "trained on", 2),
    ("paper_ppl", "paper PPL", 2),
    ("paper_bleu", "paper BLEU", 2),
    ("paper_params", "paper params", 2),
)


def _seed_runs(results: Dict[Tuple[str, int], Dict[str, Any]], row_id: str) -> List[Dict[str, Any]]:
    """The results of one row id, by seed."""
    return [r for (rid, _), r in sorted(results.items()) if rid == row_id]


def table_rows(table: Dict[str, Any], results: Dict[Tuple[str, int], Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One line per row of the table that has at least one result: seed means (± std where > 1 seed), ΔBLEU
    against the base's mean with its 95 % interval and verdict over seeds (:func:`seed_comparison`: Welch, or a
    prediction interval for a one-seed row), and the paired bootstrap's p against base seed 1 (stored in the result)."""
    base_bleu = [r["bleu"] for r in _seed_runs(results, base_id(table))]
    lines = []
    for row in table["rows"]:
        runs = _seed_runs(results, row["id"])
        if not runs:
            continue
        sym = runs[0]["symbols"]
        ppl, bleu, chrf = (mean_std([r[k] for r in runs]) for k in ("ppl", "bleu", "chrf"))
        pvals = [r["significance"]["bleu"]["p_value"] for r in runs if r.get("significance")]
        paper = row.get("paper") or {}
        vs_base = _against_base(table, row, base_bleu, [r["bleu"] for r in runs], 2)
        if row.get("stock"):  # a stock architecture: the Transformer's symbols do not describe it (see its flags)
            sym = {k: None for k in ("N", "d_model", "d_ff", "h", "d_k", "d_v", "P_drop")} | {
                "eps_ls": sym["eps_ls"],
                "steps": sym["steps"],
            }
            d_k = d_v = None
        else:
            d_k, d_v = head_dims(sym["d_model"], sym["h"], sym.get("d_k"), sym.get("d_v"))
        lines.append(
            {
                "id": row["id"],
                "row": row["row"],
                "variant": row["variant"],
                "N": sym["N"],
                "d_model": sym["d_model"],
                "d_ff": sym["d_ff"],
                "h": sym["h"],
                "d_k": d_k,
                "d_v": d_v,
                "P_drop": sym["P_drop"],
                "eps_ls": sym["eps_ls"],
                "steps": sym["steps"],
                "seeds": len(runs),
                "ppl_dev": ppl,
                "bleu_dev": bleu,
                "chrf_dev": chrf,
                "delta_bleu": vs_base["delta"],
                "delta_bleu_ci": vs_base["interval"],
                "verdict": vs_base["verdict"],
                "p_seeds": vs_base["p"],
                "p_value": pvals[0] if pvals else None,
                "params_millions": runs[0]["params"] / 1e6,
                "aer": mean_std([r["alignment"]["aer"] for r in runs]) if all("alignment" in r for r in runs) else None,
                "train_minutes": mean_std([r["train_seconds"] / 60 for r in runs])["mean"],
                "updates_per_second": _updates_per_second(runs),
                "mflops_per_token": runs[0]["flops"]["training_per_target_token"] / 1e6 if "flops" in runs[0] else None,
                "device": ", ".join(sorted({r["versions"].get("device", "not recorded") for r in runs})),
                "paper_ppl": paper.get("ppl"),
                "paper_bleu": paper.get("bleu"),
                "paper_params": paper.get("params"),
            }
        )
    return _with_holm(lines)


def _updates_per_second(runs: List[Dict[str, Any]]) -> Any:
    """Updates over training seconds, the mean over seeds that record both (else empty)."""
    rates = [r["updates"] / r["train_seconds"] for r in runs if r.get("updates") and r.get("train_seconds")]
    return mean_std(rates)["mean"] if rates else None


def _against_base(table, row, base: List[float], scores: List[float], digits: int) -> Dict[str, Any]:
    """The Δ, 95 % interval (text, ``digits`` decimals), verdict and p columns of :func:`seed_comparison` of a row's
    per-seed scores with the base's, where one side has ≥ 2 seeds; else (nothing measures training variance, or the
    base row itself) empty. A row with fewer seeds than the table plans for it gets ``incomplete (k of n seeds)``
    instead of a verdict (and stays out of Holm's family); a one-seed row's interval is marked † (it assumes the row
    varies as the base does)."""
    if row["row"] == "base" or not base or max(len(base), len(scores)) < 2:
        return {"delta": None, "interval": None, "verdict": None, "p": None}
    c = seed_comparison(base, scores)
    if c["verdict"] == "undetermined":
        return {"delta": c["delta"], "interval": None, "verdict": "undetermined", "p": None}
    interval = f"[{c['low']:+.{digits}f}, {c['high']:+.{digits}f}]" + (" †" if c["method"] == "prediction" else "")
    planned = seeds_for(row, *(((table.get("seeds") or {}).get(k, 1)) for k in ("base", "other")))
    if len(scores) < len(planned):
        return {
            "delta": c["delta"],
            "interval": interval,
            "verdict": f"incomplete ({len(scores)} of {len(planned)} seeds)",
            "p": None,
        }
    return {"delta": c["delta"], "interval": interval, "verdict": c["verdict"], "p": c["p_value"]}


def _with_holm(lines: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each line's ``verdict_holm``: its verdict against the base after Holm's adjustment over the family of the
    table's complete rows (:func:`holm`), so that the chance of any false verdict in the table stays ≤ 5 %."""
    adjusted = holm([line["p_seeds"] for line in lines])
    for line, p in zip(lines, adjusted):
        line["verdict_holm"] = holm_verdict(line["verdict"], p)
    return lines


CLASSIFICATION_COLUMNS = (
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


def epochs_to_best(curve: Sequence[Sequence[float]]) -> Optional[int]:
    """The epoch (1-based) of the first validation that reaches the curve's best accuracy, validations being once
    an epoch (fairseq's default ``--validate-interval 1``); None for an empty curve."""
    if not curve:
        return None
    best = max(accuracy for _, accuracy in curve)
    return next(i for i, (_, accuracy) in enumerate(curve, 1) if accuracy == best)


def classification_rows(table: Dict[str, Any], results: Dict[Tuple[str, int], Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One line per row with results: accuracy mean ± std over seeds, Δ test accuracy against the base's seeds with
    its 95 % interval and verdict (:func:`seed_comparison`)."""
    base_acc = [r["accuracy_test"] for r in _seed_runs(results, base_id(table))]
    lines = []
    for row in table["rows"]:
        runs = _seed_runs(results, row["id"])
        if not runs:
            continue
        test = mean_std([r["accuracy_test"] for r in runs])
        vs_base = _against_base(table, row, base_acc, [r["accuracy_test"] for r in runs], 4)
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
    return _with_holm(lines)


def _fmt(value, digits=2) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # mean ± std
        return f"{value['mean']:.{digits}f}" + (f" ± {value['std']:.{digits}f}" if value["n"] > 1 else "")
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(lines: List[Dict[str, Any]], kind: str = "translation") -> str:
    columns = CLASSIFICATION_COLUMNS if kind == "classification" else COLUMNS
    out = ["| " + " | ".join(label for _, label, _ in columns) + " |", "|" + "---|" * len(columns)]
    for line in lines:
        out.append("| " + " | ".join(_fmt(line[key], digits) for key, _, digits in columns) + " |")
    return "\n".join(out) + "\n"


def to_csv(lines: List[Dict[str, Any]], kind: str = "translation") -> str:
    columns = [key for key, _, _ in (CLASSIFICATION_COLUMNS if kind == "classification" else COLUMNS)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for line in lines:
        writer.writerow([_fmt(line[c], 4) if isinstance(line[c], (dict, float)) else _fmt(line[c]) for c in columns])
    return buf.getvalue()
