"""Checks of what the table driver reads: a table file's shapes and symbols, and a result file's keys and ranges.

Every error is a :class:`TableError` whose message names the file (and the row or key): the driver prints it as one
line ``error: …`` and starts nothing.
"""

from typing import Any, Dict, Sequence

WHOLE = ("N", "d_model", "d_ff", "h", "d_k", "d_v", "steps")  # whole numbers ≥ 1 (d_k, d_v may be null: d_model / h)
FRACTIONS = ("P_drop", "eps_ls")  # in [0, 1)
RESULT_KEYS = ("id", "seed")  # what a result file is found by


class TableError(ValueError):
    """A table file that cannot be run, or a result file that cannot be read; the message names the file and row."""


def check_table_shapes(path: str, table: Dict[str, Any]) -> None:
    """``rows`` a non-empty list of mappings, ``scales`` a mapping of mappings, ``base`` and ``change`` mappings."""
    rows, scales = table["rows"], table["scales"]
    if not isinstance(rows, list) or not rows:
        raise TableError(f"{path}: rows: a list of rows ('- {{id: …, row: …, variant: …}}'), got {rows!r:.60}")
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise TableError(f"{path}: rows: row {n} is not a mapping ({{id: …, row: …}}), got {row!r:.60}")
        for key in ("change", "flags_by_scale"):
            if row.get(key) is not None and not isinstance(row[key], dict):
                raise TableError(f"{path}: row {row.get('id', n)}: {key}: a mapping, got {row[key]!r:.60}")
        if row.get("flags") is not None and not isinstance(row["flags"], list):
            raise TableError(f"{path}: row {row.get('id', n)}: flags: a list, got {row['flags']!r:.60}")
    if not isinstance(scales, dict) or not scales or not all(isinstance(v, dict) for v in scales.values()):
        raise TableError(f"{path}: scales: a mapping of scale names to {{flags: […], …}}, got {scales!r:.60}")
    if table.get("base") is not None and not isinstance(table["base"], dict):
        raise TableError(f"{path}: base: a mapping of symbols, got {table['base']!r:.60}")
    if table.get("default_rows") is not None and not isinstance(table["default_rows"], list):
        raise TableError(f"{path}: default_rows: a list of row groups or ids, got {table['default_rows']!r:.60}")


def check_symbols(path: str, where: str, symbols: Dict[str, Any]) -> None:
    """Whole numbers ≥ 1 for sizes, layers, heads and steps; fractions in [0, 1) for P_drop and ε_ls."""
    for name, value in symbols.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if name in WHOLE and not (value is None and name in ("d_k", "d_v")):
            if not (number and float(value).is_integer() and value >= 1):
                raise TableError(f"{path}: {where}: {name}: a whole number ≥ 1, got {value!r}")
        if name in FRACTIONS and not (number and 0 <= value < 1):
            raise TableError(f"{path}: {where}: {name}: a number in [0, 1), got {value!r}")


def check_result(path: str, result: Any, tasks: Sequence[Any]) -> None:
    """A result file's content: a JSON object with its id and seed, its figures numbers in the ranges ``tasks`` give
    them (:attr:`.task.TableTask.ranges`: BLEU and chrF in [0, 100], perplexity ≥ 1, accuracy in [0, 1]), and a
    finished one (with ``flags``) holding every figure of one task."""
    if not isinstance(result, dict):
        raise TableError(f"{path}: a result file is a JSON object, got a {type(result).__name__}")
    for key in RESULT_KEYS:
        if key not in result:
            raise TableError(f"{path}: no '{key}' (not a result file of the table driver?)")
    for key in ("id", "row"):
        if key in result and not (isinstance(result[key], str) and result[key]):
            raise TableError(f"{path}: {key}: a row's name, got {result[key]!r}")
    seed = result["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 1:
        raise TableError(f"{path}: seed: a whole number ≥ 1, got {seed!r}")
    for name, (low, high) in {k: v for task in tasks for k, v in task.ranges.items()}.items():
        value = result.get(name)
        if value is None:  # a figure its kind has not (perplexity of a classifier) or that is not measured yet
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and low <= value <= high):
            raise TableError(f"{path}: {name}: {value!r} is not a number in [{low:g}, {high:g}]")
    if "flags" in result:
        if not isinstance(result["flags"], list):
            raise TableError(f"{path}: flags: a list, got {result['flags']!r:.60}")
        if not any(all(result.get(k) is not None for k in task.figures) for task in tasks):
            wanted = " or ".join(", ".join(task.figures) for task in tasks)
            raise TableError(f"{path}: a finished result needs its figures ({wanted})")
