"""A table of variations (the paper's Table 3 is one): rows as changes of the paper's symbols from a base recipe.

Pure functions: read and check a table file, turn a row into fairseq-train flags at a scale, and build the
Markdown/CSV table from the per-row result files. Running the rows is :mod:`.table_runner`.
"""
import csv
import io
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..evaluation.significance import mean_std

SYMBOLS = ("N", "d_model", "d_ff", "h", "d_k", "d_v", "P_drop", "eps_ls", "steps", "positions")
SIZES = ("d_model", "d_ff", "d_k", "d_v")  # multiplied by a scale's dim_factor
ROW_KEYS = {"id", "row", "variant", "change", "paper", "flags", "flags_by_scale", "arch", "data", "note"}


class TableError(ValueError):
    """A table file that cannot be run; the message names the file and the row."""


def load_table(path: str) -> Dict[str, Any]:
    """Read a table file (YAML) and check it: known symbols, unique row ids, scales with factors and flags."""
    from omegaconf import OmegaConf

    if not os.path.isfile(path):
        raise TableError(f"{path}: no such table file")
    try:
        table = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as e:  # omegaconf/yaml raise several kinds
        raise TableError(f"{path}: not a valid YAML table file ({e})") from None
    kind = table.setdefault("kind", "translation")
    if kind not in ("translation", "classification"):
        raise TableError(f"{path}: kind must be translation or classification, got {kind!r}")
    for key in ("name", "scales", "rows") + (("base", "decode") if kind == "translation" else ()):
        if key not in table:
            raise TableError(f"{path}: missing '{key}'")
    unknown = set(table.get("base") or {}) - set(SYMBOLS)
    if unknown:
        raise TableError(f"{path}: base: unknown symbol(s) {sorted(unknown)} (known: {', '.join(SYMBOLS)})")
    seen = set()
    for row in table["rows"]:
        rid = row.get("id")
        if not rid or rid in seen:
            raise TableError(f"{path}: every row needs a unique id (got {rid!r})")
        seen.add(rid)
        bad = set(row) - ROW_KEYS
        if bad:
            raise TableError(f"{path}: row {rid}: unknown key(s) {sorted(bad)}")
        bad = set(row.get("change") or {}) - set(SYMBOLS)
        if bad:
            raise TableError(f"{path}: row {rid}: unknown symbol(s) {sorted(bad)} (known: {', '.join(SYMBOLS)})")
    for name, scale in table["scales"].items():
        for key in ("dim_factor", "step_factor", "flags") if kind == "translation" else ("flags",):
            if key not in scale:
                raise TableError(f"{path}: scale {name}: missing '{key}'")
    table["path"] = os.path.abspath(path)
    return table


def select_rows(table: Dict[str, Any], selection: Optional[Sequence[str]]) -> List[Dict[str, Any]]:
    """Rows whose ``row`` group (base, A, …) or ``id`` is in ``selection`` (default: the table's default_rows)."""
    wanted = list(selection or table.get("default_rows") or [r["row"] for r in table["rows"]])
    known = {r["row"] for r in table["rows"]} | {r["id"] for r in table["rows"]}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise TableError(f"{table['path']}: no row or row group {missing} (known: {', '.join(sorted(known))})")
    return [r for r in table["rows"] if r["row"] in wanted or r["id"] in wanted]


def check_scale(table: Dict[str, Any], scale: str) -> None:
    if scale not in table["scales"]:
        raise TableError(f"{table['path']}: no scale {scale!r} (known: {', '.join(table['scales'])})")


def row_symbols(table: Dict[str, Any], row: Dict[str, Any], scale: str) -> Dict[str, Any]:
    """The row's symbols at ``scale``: base + change, sizes × dim_factor, steps × step_factor (rounded)."""
    check_scale(table, scale)
    s = table["scales"][scale]
    symbols = {**table["base"], **(row.get("change") or {})}
    for name in SIZES:
        if symbols.get(name) is not None:
            symbols[name] = max(1, round(symbols[name] * s["dim_factor"]))
    symbols["steps"] = max(1, round(symbols["steps"] * s["step_factor"]))
    return symbols


def symbols_to_flags(symbols: Dict[str, Any]) -> List[str]:
    """Paper symbols → fairseq-train flags (the one place where the two vocabularies meet)."""
    flags = []
    for side in ("encoder", "decoder"):
        flags += [f"--{side}-layers", symbols["N"], f"--{side}-embed-dim", symbols["d_model"],
                  f"--{side}-ffn-embed-dim", symbols["d_ff"], f"--{side}-attention-heads", symbols["h"]]
    if symbols.get("d_k") is not None:
        flags += ["--attention-key-dim", symbols["d_k"]]
    if symbols.get("d_v") is not None:
        flags += ["--attention-value-dim", symbols["d_v"]]
    flags += ["--dropout", symbols["P_drop"], "--label-smoothing", symbols["eps_ls"], "--max-update", symbols["steps"],
              "--positional-encoding", symbols["positions"]]
    return [str(f) for f in flags]


def train_flags(table: Dict[str, Any], row: Dict[str, Any], scale: str, seed: int) -> List[str]:
    """The scale's flags, then the row's symbols (tables with a ``base``), then the row's own raw flags (later flags
    win in fairseq)."""
    check_scale(table, scale)
    flags = list(table["scales"][scale]["flags"])
    if row.get("arch"):
        flags += ["--arch", row["arch"]]
    if table.get("base"):
        flags += symbols_to_flags(row_symbols(table, row, scale))
    flags += list(row.get("flags") or []) + list((row.get("flags_by_scale") or {}).get(scale, []))
    return [str(f) for f in flags] + ["--seed", str(seed)]


def seeds_for(row: Dict[str, Any], base_seeds: int, other_seeds: int) -> List[int]:
    return list(range(1, (base_seeds if row["row"] == "base" else other_seeds) + 1))


def result_name(row_id: str, seed: int) -> str:
    return f"{row_id}-seed{seed}.json"


def load_results(results_dir: str) -> Dict[Tuple[str, int], Dict[str, Any]]:
    """Every finished result file of ``results_dir``, keyed by (row id, seed)."""
    out = {}
    if not os.path.isdir(results_dir):
        return out
    for name in sorted(os.listdir(results_dir)):
        if name.endswith(".json"):
            with open(os.path.join(results_dir, name), encoding="utf-8") as f:
                r = json.load(f)
            out[(r["id"], r["seed"])] = r
    return out


# (key, Markdown heading, digits) of each column; the CSV is headed by the keys.
COLUMNS = (("row", "", 2), ("variant", "", 2), ("N", "N", 2), ("d_model", "d_model", 2), ("d_ff", "d_ff", 2),
           ("h", "h", 2), ("d_k", "d_k", 2), ("d_v", "d_v", 2), ("P_drop", "P_drop", 2), ("eps_ls", "ε_ls", 2),
           ("steps", "steps", 2), ("seeds", "seeds", 2), ("ppl_dev", "PPL (dev)", 2), ("bleu_dev", "BLEU (dev)", 2),
           ("chrf_dev", "chrF", 2), ("delta_bleu", "ΔBLEU", 2), ("p_value", "p", 3), ("aer", "AER", 2),
           ("params_millions", "params ×10⁶", 1), ("train_minutes", "train min", 1), ("paper_ppl", "paper PPL", 2),
           ("paper_bleu", "paper BLEU", 2), ("paper_params", "paper params", 2))


def table_rows(table: Dict[str, Any], results: Dict[Tuple[str, int], Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One line per row of the table that has at least one result: seed means (± std where > 1 seed), ΔBLEU
    against the base mean, and the p-value of the paired bootstrap against base seed 1 (stored in the result)."""
    base_bleu = [r["bleu"] for (rid, _), r in results.items() if rid == "base"]
    lines = []
    for row in table["rows"]:
        runs = [r for (rid, _), r in sorted(results.items()) if rid == row["id"]]
        if not runs:
            continue
        sym = runs[0]["symbols"]
        ppl, bleu, chrf = (mean_std([r[k] for r in runs]) for k in ("ppl", "bleu", "chrf"))
        pvals = [r["significance"]["bleu"]["p_value"] for r in runs if r.get("significance")]
        paper = row.get("paper") or {}
        d_k = sym["d_k"] if sym.get("d_k") is not None else sym["d_model"] // sym["h"]
        d_v = sym["d_v"] if sym.get("d_v") is not None else sym["d_model"] // sym["h"]
        lines.append({
            "row": row["row"], "variant": row["variant"], "N": sym["N"], "d_model": sym["d_model"], "d_ff": sym["d_ff"],
            "h": sym["h"], "d_k": d_k, "d_v": d_v, "P_drop": sym["P_drop"], "eps_ls": sym["eps_ls"],
            "steps": sym["steps"], "seeds": len(runs), "ppl_dev": ppl, "bleu_dev": bleu, "chrf_dev": chrf,
            "delta_bleu": None if row["row"] == "base" or not base_bleu else bleu["mean"] - mean_std(base_bleu)["mean"],
            "p_value": pvals[0] if pvals else None, "params_millions": runs[0]["params"] / 1e6,
            "aer": mean_std([r["alignment"]["aer"] for r in runs]) if all("alignment" in r for r in runs) else None,
            "train_minutes": mean_std([r["train_seconds"] / 60 for r in runs])["mean"],
            "paper_ppl": paper.get("ppl"), "paper_bleu": paper.get("bleu"), "paper_params": paper.get("params"),
        })
    return lines


CLASSIFICATION_COLUMNS = (("run", "run", 4), ("changes", "changes", 4), ("seeds", "seeds", 4),
                          ("accuracy_valid", "valid accuracy", 4), ("accuracy_test", "test accuracy", 4),
                          ("delta_accuracy", "Δ test accuracy", 4), ("params_millions", "params ×10⁶", 1),
                          ("train_minutes", "train min", 1), ("reference_test_accuracy", "users' test accuracy", 4))


def classification_rows(table: Dict[str, Any], results: Dict[Tuple[str, int], Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One line per row with results: accuracy mean ± std over seeds, Δ test accuracy against the base mean."""
    base_acc = [r["accuracy_test"] for (rid, _), r in results.items() if rid == "base"]
    lines = []
    for row in table["rows"]:
        runs = [r for (rid, _), r in sorted(results.items()) if rid == row["id"]]
        if not runs:
            continue
        test = mean_std([r["accuracy_test"] for r in runs])
        lines.append({
            "run": row["variant"], "changes": row.get("note", ""), "seeds": len(runs),
            "accuracy_valid": mean_std([r["accuracy_valid"] for r in runs]), "accuracy_test": test,
            "delta_accuracy": None if row["row"] == "base" or not base_acc else test["mean"] - mean_std(base_acc)["mean"],
            "params_millions": runs[0]["params"] / 1e6,
            "train_minutes": mean_std([r["train_seconds"] / 60 for r in runs])["mean"],
            "reference_test_accuracy": (row.get("paper") or {}).get("test_acc"),
        })
    return lines


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
