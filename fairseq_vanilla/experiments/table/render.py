"""A table of variations as Markdown and CSV from its result files, in the columns of its task (:mod:`.tasks`: the
lines of a translation or a classification table); what every task's lines share: a row's runs by seed, its score
against the base's seeds (Δ, 95 % interval, verdict: training variance in the null) and Holm's adjustment."""

import csv
import io
from typing import Any, Dict, List, Sequence

from ...evaluation.seed_statistics import holm, holm_verdict, seed_comparison
from .spec import seeds_for
from .task import Column, Results


def seed_runs(results: Results, row_id: str) -> List[Dict[str, Any]]:
    """The results of one row id, by seed."""
    return [r for (rid, _), r in sorted(results.items()) if rid == row_id]


def against_base(table, row, base: List[float], scores: List[float], digits: int) -> Dict[str, Any]:
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


def with_holm(lines: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each line's ``verdict_holm``: its verdict against the base after Holm's adjustment over the family of the
    table's complete rows (:func:`holm`), so that the chance of any false verdict in the table stays ≤ 5 %."""
    adjusted = holm([line["p_seeds"] for line in lines])
    for line, p in zip(lines, adjusted):
        line["verdict_holm"] = holm_verdict(line["verdict"], p)
    return lines


def _fmt(value, digits=2) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # mean ± std
        return f"{value['mean']:.{digits}f}" + (f" ± {value['std']:.{digits}f}" if value["n"] > 1 else "")
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(lines: List[Dict[str, Any]], columns: Sequence[Column]) -> str:
    """The Markdown table of ``lines`` (a task's :attr:`.task.TableTask.lines`) in ``columns`` (its columns)."""
    out = ["| " + " | ".join(label for _, label, _ in columns) + " |", "|" + "---|" * len(columns)]
    for line in lines:
        out.append("| " + " | ".join(_fmt(line[key], digits) for key, _, digits in columns) + " |")
    return "\n".join(out) + "\n"


def to_csv(lines: List[Dict[str, Any]], columns: Sequence[Column]) -> str:
    """The CSV of ``lines`` in ``columns``, headed by their keys (means ± std, and floats, to 4 decimals)."""
    columns = [key for key, _, _ in columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for line in lines:
        writer.writerow([_fmt(line[c], 4) if isinstance(line[c], (dict, float)) else _fmt(line[c]) for c in columns])
    return buf.getvalue()
