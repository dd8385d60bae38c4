"""Reading and writing corpora: UTF-8 lines with errors that name the file and line, writes that never leave a
half file behind (write to a temporary name, rename on success), ``key=value`` settings files. Output files and
folders a tool replaces only when it made them itself: :mod:`fairseq_vanilla.text.outputs`,
:mod:`fairseq_vanilla.text.output_dirs`."""

import contextlib
import json
import os
import struct
from typing import Dict, Iterator, List, Sequence, TextIO


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


def check_json_output(
    path: str, keys: Sequence[str], reads: Sequence[str] = (), label: str = "--out", companions: Sequence[str] = ()
) -> None:
    """Raise :class:`PipelineError` unless a tool may (re)write the JSON file ``path``: one that does not exist, or a
    JSON object holding all of ``keys`` (the tool's own earlier output); never one of ``reads`` (its inputs).
    ``companions`` (the tool's tables and plots beside it) are rewritten only with their own ``path``: one that exists
    where ``path`` does not is someone else's."""
    for read in reads:
        if read and os.path.realpath(read) == os.path.realpath(path):
            raise PipelineError(f"{label} {path}: is an input of this command; choose another {label}")
    if not os.path.lexists(path):
        for other in companions:
            if os.path.lexists(other):
                raise PipelineError(f"{label} {other}: exists and is not this command's output; choose a new {label}")
        return
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        found = None
    if not isinstance(found, dict) or not all(key in found for key in keys):
        raise PipelineError(f"{label} {path}: exists and is not this command's output; choose a new {label}")


PNG_SOFTWARE = "fairseq-vanilla"  # PNG "Software" text of a plot a tool writes on its own: "fairseq-vanilla TOOL"


def png_metadata(tool: str) -> Dict[str, str]:
    """``savefig(..., metadata=png_metadata(tool))``: marks a PNG as ``tool``'s, for :func:`check_png_output`."""
    return {"Software": f"{PNG_SOFTWARE} {tool}"}


def png_text(path: str) -> Dict[str, str]:
    """The ``tEXt`` entries (keyword → text) of a PNG file; ``{}`` for a file that is not a PNG."""
    found: Dict[str, str] = {}
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return found
        while True:
            head = f.read(8)  # length (4 bytes, big-endian), chunk type (4)
            if len(head) < 8 or head[4:] == b"IEND":
                return found
            size = struct.unpack(">I", head[:4])[0]
            if head[4:] != b"tEXt":
                f.seek(size + 4, 1)  # the chunk's data (the image's, mostly) and its CRC, unread
                continue
            data = f.read(size)
            f.seek(4, 1)  # CRC
            if b"\0" in data:
                key, text = data.split(b"\0", 1)
                found[key.decode("latin-1")] = text.decode("latin-1")


def check_png_output(path: str, tool: str, label: str = "--plot") -> None:
    """Raise :class:`PipelineError` unless ``tool`` may (re)write the plot ``path``: absent, or a PNG it marked as
    its own (:func:`png_metadata`)."""
    if os.path.lexists(path) and png_text(path).get("Software") != png_metadata(tool)["Software"]:
        raise PipelineError(f"{label} {path}: exists and is not this command's output; choose a new {label}")


def long_lines(path: str, max_tokens: int) -> List[int]:
    """Numbers (from 1) of the lines of ``path`` with more than ``max_tokens`` space-separated tokens."""
    return [i for i, line in enumerate(read_lines(path, allow_empty_file=True), 1) if len(line.split()) > max_tokens]


def report_long_lines(paths: List[str], max_tokens: int, why: str = "") -> str:
    """One warning line per file with lines longer than ``max_tokens`` tokens (count and first line numbers), or ''."""
    warnings = []
    for path in paths:
        found = long_lines(path, max_tokens)
        if found:
            shown = ", ".join(map(str, found[:10])) + (", …" if len(found) > 10 else "")
            warnings.append(
                f"warning: {path}: {len(found):,} line(s) longer than {max_tokens} tokens (lines {shown}){why}"
            )
    return "\n".join(warnings)
