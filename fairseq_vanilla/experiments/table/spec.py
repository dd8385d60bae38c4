"""A table of variations (the paper's Table 3 is one): rows as changes of the paper's symbols from a base recipe.

Pure functions: read and check a table file, turn a row into fairseq-train flags at a scale, read the per-row result
files. The Markdown/CSV table is built by :mod:`.render`; one (row, seed) is run by :mod:`.jobs`, the
whole table (through Hydra's launchers) by :mod:`.runner`.
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .validate import TableError, check_result, check_symbols, check_table_shapes

SYMBOLS = ("N", "d_model", "d_ff", "h", "d_k", "d_v", "P_drop", "eps_ls", "steps", "positions")
SIZES = ("d_model", "d_ff", "d_k", "d_v")  # multiplied by a scale's dim_factor
ROW_KEYS = {
    "id",
    "row",
    "variant",
    "change",
    "paper",
    "flags",
    "flags_by_scale",
    "arch",
    "data",
    "note",
    "seeds",
    "stock",
}


def load_table(path: str) -> Dict[str, Any]:
    """Read a table file (YAML) and check it: a known task (``kind:``, :mod:`.tasks`) with the keys it needs, known
    symbols, unique row ids, scales with the keys their task needs."""
    from omegaconf import OmegaConf

    from .tasks import DEFAULT, TASKS  # here, not above: the tasks' files use this module's rows

    if not os.path.isfile(path):
        raise TableError(f"{path}: no such table file")
    try:
        table = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as e:  # omegaconf/yaml raise several kinds
        raise TableError(f"{path}: not a valid YAML table file ({e})") from None
    if not isinstance(table, dict):
        raise TableError(
            f"{path}: a table file is a YAML mapping (name, scales, rows, …), got a {type(table).__name__}"
        )
    kind = table.setdefault("kind", DEFAULT)
    if not isinstance(kind, str) or kind not in TASKS:
        raise TableError(f"{path}: kind must be {' or '.join(TASKS)}, got {kind!r}")
    task = TASKS[kind]
    for key in ("name", "scales", "rows") + task.table_keys:
        if key not in table:
            raise TableError(f"{path}: missing '{key}'")
    check_table_shapes(path, table)
    unknown = set(table.get("base") or {}) - set(SYMBOLS)
    if unknown:
        raise TableError(f"{path}: base: unknown symbol(s) {sorted(unknown)} (known: {', '.join(SYMBOLS)})")
    check_symbols(path, "base", table.get("base") or {})
    seen = set()
    for n, row in enumerate(table["rows"], 1):
        rid = row.get("id")
        if not rid or not isinstance(rid, str) or rid in seen:
            raise TableError(f"{path}: every row needs a unique id (row {n} of rows: got {rid!r})")
        seen.add(rid)
        for key in ("row", "variant"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise TableError(f"{path}: row {rid}: needs '{key}:' (a name), got {row.get(key)!r}")
        bad = set(row) - ROW_KEYS
        if bad:
            raise TableError(f"{path}: row {rid}: unknown key(s) {sorted(bad)}")
        if "seeds" in row and not (isinstance(row["seeds"], int) and row["seeds"] >= 1):
            raise TableError(f"{path}: row {rid}: seeds must be a whole number ≥ 1, got {row['seeds']!r}")
        bad = set(row.get("change") or {}) - set(SYMBOLS)
        if bad:
            raise TableError(f"{path}: row {rid}: unknown symbol(s) {sorted(bad)} (known: {', '.join(SYMBOLS)})")
        check_symbols(path, f"row {rid}", row.get("change") or {})
    stock = [r["id"] for r in table["rows"] if r.get("stock")]
    for name, scale in table["scales"].items():
        for key in task.scale_keys:
            if key not in scale:
                raise TableError(f"{path}: scale {name}: missing '{key}'")
        if stock and "stock_flags" not in scale:
            raise TableError(f"{path}: scale {name}: missing 'stock_flags' (the flags of stock rows {stock})")
    reuse = table.get("reuse")
    if reuse is not None and not (isinstance(reuse, dict) and {"rows", "results"} <= set(reuse)):
        raise TableError(f"{path}: reuse: expected {{rows: [ROW ids], results: FOLDER beside the table file}}")
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


def loss_flags(symbols: Dict[str, Any]) -> List[str]:
    """ε_ls → the criterion's flag (training and fairseq-validate: the dev loss is measured with the same ε_ls)."""
    return ["--label-smoothing", str(symbols["eps_ls"])]


def symbols_to_flags(symbols: Dict[str, Any]) -> List[str]:
    """Paper symbols → fairseq-train flags (the one place where the two vocabularies meet)."""
    flags = []
    for side in ("encoder", "decoder"):
        flags += [
            f"--{side}-layers",
            symbols["N"],
            f"--{side}-embed-dim",
            symbols["d_model"],
            f"--{side}-ffn-embed-dim",
            symbols["d_ff"],
            f"--{side}-attention-heads",
            symbols["h"],
        ]
    if symbols.get("d_k") is not None:
        flags += ["--attention-key-dim", symbols["d_k"]]
    if symbols.get("d_v") is not None:
        flags += ["--attention-value-dim", symbols["d_v"]]
    flags += [
        "--dropout",
        symbols["P_drop"],
        *loss_flags(symbols),
        "--max-update",
        symbols["steps"],
        "--positional-encoding",
        symbols["positions"],
    ]
    return [str(f) for f in flags]


def train_flags(table: Dict[str, Any], row: Dict[str, Any], scale: str, seed: int) -> List[str]:
    """The scale's flags and its ``more_flags`` (how a scale changes a list it shares with another), then the row's
    symbols (tables with a ``base``), then the row's own raw flags (later flags win in fairseq). A ``stock`` row (a
    stock fairseq architecture: ``lstm``, ``fconv``) takes the scale's ``stock_flags`` (data, batching, logging), the
    base's budget and loss (``--max-update`` steps, ``--label-smoothing`` ε_ls) and its own flags (arch, sizes,
    optimiser): none of the Transformer's symbols."""
    check_scale(table, scale)
    scale_cfg, arch = table["scales"][scale], ["--arch", row["arch"]] if row.get("arch") else []
    if row.get("stock"):
        symbols = row_symbols(table, row, scale)
        flags = [*scale_cfg["stock_flags"], "--max-update", symbols["steps"], *loss_flags(symbols)]
        flags += arch
    else:
        flags = list(scale_cfg["flags"]) + list(scale_cfg.get("more_flags") or []) + arch
        if table.get("base"):
            flags += symbols_to_flags(row_symbols(table, row, scale))
    flags += list(row.get("flags") or []) + list((row.get("flags_by_scale") or {}).get(scale, []))
    return last_flags_win([str(f) for f in flags] + ["--seed", str(seed)])


def last_flags_win(flags: Sequence[str]) -> List[str]:
    """A flag given twice (a scale's ``more_flags``, a row's ``arch`` or raw flags) kept once, with its last value at
    its last place: what fairseq's parser reads, written once. Tokens after a ``--flag`` that do not start with
    ``--`` are its value."""
    groups: List[List[str]] = []
    for token in flags:
        if token.startswith("--") or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    last = {g[0]: i for i, g in enumerate(groups)}
    return [t for i, g in enumerate(groups) if last[g[0]] == i for t in g]


def base_id(table: Dict[str, Any]) -> Optional[str]:
    """The id of the table's base row (its ``row`` group is ``base``; Table 3 calls it ``base``, the IMDB padding
    table ``trans-post``): the row every other is compared with; None if the table has none."""
    return next((row["id"] for row in table["rows"] if row["row"] == "base"), None)


def seeds_for(row: Dict[str, Any], base_seeds: int, other_seeds: int) -> List[int]:
    """Seeds 1…n of a row: the row's own ``seeds`` (rows a question needs three of), else the base's or the others'
    number; a larger number given on the command line wins."""
    default = base_seeds if row["row"] == "base" else other_seeds
    return list(range(1, max(row.get("seeds", 0), default) + 1))


def result_name(row_id: str, seed: int) -> str:
    return f"{row_id}-seed{seed}.json"


def table_results(table: Dict[str, Any], results_dir: str, scale: str) -> Dict[Tuple[str, int], Dict[str, Any]]:
    """:func:`load_results` of ``results_dir``, plus the rows a table ``reuse``s from another table's results at the
    same scale (the baselines reuse Table 3's base: its three seeds are the Transformer row, not trained again)."""
    found = load_results(results_dir)
    reuse = table.get("reuse")
    if reuse:
        other = os.path.join(os.path.dirname(table["path"]), reuse["results"], scale)
        found.update({k: r for k, r in load_results(other).items() if k[0] in reuse["rows"]})
    return found


def load_results(results_dir: str) -> Dict[Tuple[str, int], Dict[str, Any]]:
    """Every finished result file of ``results_dir``, keyed by (row id, seed); a file cut short, edited out of its
    ranges or of another shape is a :class:`TableError` naming it (:func:`.validate.check_result`)."""
    from .tasks import TASKS  # here, not above: the tasks' files use this module's rows

    out = {}
    if not os.path.isdir(results_dir):
        return out
    for name in sorted(os.listdir(results_dir)):
        if name.endswith(".json"):
            path = os.path.join(results_dir, name)
            try:
                with open(path, encoding="utf-8") as f:
                    r = json.load(f)
            except (OSError, UnicodeDecodeError, ValueError) as e:
                problem = f"not valid JSON ({e})" if isinstance(e, json.JSONDecodeError) else str(e).splitlines()[0]
                raise TableError(f"{path}: {problem}; move it away (the job runs again) or repair it") from None
            check_result(path, r, list(TASKS.values()))
            if (r["id"], r["seed"]) in out:
                raise TableError(f"{path}: a second result file of row {r['id']} seed {r['seed']}")
            out[(r["id"], r["seed"])] = r
    return out
