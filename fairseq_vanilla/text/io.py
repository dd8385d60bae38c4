"""Reading and writing corpora: UTF-8 lines with errors that name the file and line, writes that never leave a
half file behind (write to a temporary name, rename on success), ``key=value`` settings files."""

import contextlib
import os
from typing import Dict, Iterator, List, TextIO


class PipelineError(Exception):
    """Bad input; the message names the file (and line) and the problem."""


def read_lines(path: str, allow_empty_file: bool = False, label: str = "") -> List[str]:
    """All lines of a UTF-8 text file without their newlines; errors name the file (or ``label``) and the line."""
    path_for_errors = label or path
    if not os.path.isfile(path):
        raise PipelineError(f"{path_for_errors}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines and not allow_empty_file:
        raise PipelineError(f"{path_for_errors}: file is empty")
    out = []
    for i, raw in enumerate(lines, 1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise PipelineError(
                f"{path_for_errors}:{i}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
            ) from None
    return out


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield ``path + '.tmp'`` to be written; rename it to ``path`` only if the block succeeds, else remove it.

    The one write-to-temporary-then-rename of the project: text outputs (:func:`atomic_write`), the synthetic
    corpus and fairseq's checkpoint copies (``fairseq_fixes.atomic_checkpoints``) all go through it."""
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[TextIO]:
    """Open ``path + '.tmp'`` for writing (UTF-8) and rename it to ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f


def read_settings(path: str) -> Dict[str, str]:
    """The ``key=value`` lines of a settings file such as a prepared folder's ``bin/pipeline.txt``."""
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def write_lines(path: str, lines: List[str]) -> None:
    """One line each, newline-terminated, written atomically."""
    with atomic_write(path) as f:
        f.writelines(line + "\n" for line in lines)


def check_parallel(src: str, tgt: str, allow_empty_lines: bool = True, labels=("", "")) -> int:
    """Both sides readable UTF-8, non-empty, and of equal line count; returns the count.

    ``labels`` name the files in messages (e.g. the original of a decompressed copy)."""
    a, b = read_lines(src, label=labels[0]), read_lines(tgt, label=labels[1])
    src, tgt = labels[0] or src, labels[1] or tgt
    if len(a) != len(b):
        raise PipelineError(
            f"{src} has {len(a)} lines but {tgt} has {len(b)}: parallel files must have equal line counts"
        )
    if not allow_empty_lines:
        for path, lines in ((src, a), (tgt, b)):
            for i, line in enumerate(lines, 1):
                if not line.strip():
                    raise PipelineError(f"{path}:{i}: empty line")
    return len(a)


def count_lines(path: str) -> int:
    """Number of lines of a UTF-8 text file (an empty file has 0)."""
    return len(read_lines(path, allow_empty_file=True))
