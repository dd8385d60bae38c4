"""What the table driver asks of a table's task (its file's ``kind:``): which files and keys it needs, the criterion
its rows train with, how a trained job is evaluated, which figures a result holds, what is filled in from other
results, and the lines and columns of the rendered table. One :class:`TableTask` per file of :mod:`.tasks`; the
driver (:mod:`.spec`, :mod:`.jobs`, :mod:`.runner`) asks the task and never its name."""

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

Table = Dict[str, Any]  # a table file as :func:`.spec.load_table` reads it
Results = Dict[Tuple[str, int], Dict[str, Any]]  # result files by (row id, seed), as :func:`.spec.table_results` reads
Column = Tuple[str, str, int]  # (key, Markdown heading, digits); the CSV is headed by the keys


@dataclass(frozen=True)
class Job:
    """One (row, seed) whose training has run, as its task's evaluation sees it."""

    table: Table
    row: Dict[str, Any]
    seed: int
    scale: str
    prepared: str  # the prepare script's --out (raw/, bin/, align/)
    data: str  # the binarised folder fairseq-train read
    work: str  # the job's folder, OUT/ROW/seedN
    criterion: List[str]  # --criterion NAME and the flags it needs
    flags: List[str]  # the training flags
    threads: int
    label: str  # "ROW seed N", for the progress lines

    @property
    def checkpoints(self) -> str:
        return os.path.join(self.work, "checkpoints")


@dataclass(frozen=True)
class TableTask:
    """A task of the table driver: what it needs, trains, evaluates, scores, checks and renders."""

    name: str  # a table file's kind:
    table_keys: Tuple[str, ...]  # what its table file needs besides name, scales and rows
    scale_keys: Tuple[str, ...]  # what each of its scales needs
    missing_inputs: Callable[[Table, str], List[str]]  # (table, --data) → the files it reads there that are absent
    has_dictionary: Callable[[str], bool]  # whether a binarised folder holds what fairseq reads for it
    criterion: Callable[[Dict[str, Any]], List[str]]  # a row → --criterion NAME and the flags it needs
    curve: str  # the dev figure fairseq-train logs at each validation (a result's valid_curve)
    evaluate: Callable[[Job], Dict[str, Any]]  # a trained job → its result's figures and records
    figures: Tuple[str, ...]  # what a finished result holds and a job reports, in this order
    ranges: Dict[str, Tuple[float, float]]  # every figure a result may hold: (lowest, highest)
    complete: Callable[[Table, Results, str, str], None]  # (table, results, their folder, --data): what a result
    # gets from the others (a test against the base), written back into its file
    lines: Callable[[Table, Results], List[Dict[str, Any]]]  # one line per row with results
    columns: Callable[[Table], Tuple[Column, ...]]  # a table → its rendered columns, in order
