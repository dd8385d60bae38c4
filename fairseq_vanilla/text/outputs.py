"""Outputs a command replaces only when it made them itself: files (:func:`claim_output`, :func:`output_file`) and
folders (:func:`fairseq_vanilla.text.output_dirs.output_dir`).

The rule for a command that writes one file (an HTML page, an averaged checkpoint, a JSON record): a path that does
not exist is written; an existing file is replaced only when it is this command's own earlier output of the same kind,
recognised by its content (``is_own``: a marker in a page, a key in a checkpoint, keys of a JSON object), or when the
user gives ``--force``. Never, not even with ``--force``: a folder, or a file the command reads (its ``--path``).
Writes go to ``PATH.tmp``, renamed to ``PATH`` only on success and removed on failure
(:func:`fairseq_vanilla.text.io.atomic_path`), so a failed command leaves what was there and no temporary file.

Folders (an export, plots, a report; :mod:`fairseq_vanilla.text.output_dirs`): a marker file in the folder names
the tool that made it and lists the files it made with their SHA-256. An existing folder that is not empty and not
the tool's is refused (``--out DIR: exists and was not made by TOOL; use --force``), so is the tool's own where a
listed file was changed since; a re-run into its own folder replaces only the files it made, ``--force`` only files of
the same names. Never, even with ``--force``: a file in the folder's place, a folder holding a file the command reads.
Output is written into ``DIR.tmp`` and moved in only on success; a failure removes ``DIR.tmp``, ``DIR`` unchanged.
"""

import contextlib
import json
import os
from typing import Callable, Iterator, Sequence

from .io import PipelineError, atomic_path

IsOwn = Callable[[str], bool]


def claim_output(
    path: str, *, is_own: IsOwn, force: bool = False, flag: str = "--out", reads: Sequence[str] = ()
) -> str:
    """Raise :class:`PipelineError` (``flag: path: problem``) unless this command may write the file ``path``; return
    ``path``. ``reads`` are the files the command reads; ``is_own(path)`` says whether an existing file is the
    command's own earlier output (an exception in it counts as no)."""
    _check(path, is_own, force, flag, reads, tmp_too=True)
    return path


def _check(path: str, is_own: IsOwn, force: bool, flag: str, reads: Sequence[str], tmp_too: bool) -> None:
    if not path:
        raise PipelineError(f"{flag}: empty path")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PipelineError(f"{flag}: {folder}: no such folder")
    for read in reads:
        if read and os.path.lexists(read) and os.path.realpath(read) == os.path.realpath(path):
            raise PipelineError(f"{flag}: {path}: is a file this command reads; choose another {flag}")
    tmp = path + ".tmp"
    for target in (path, tmp) if tmp_too else (path,):
        if os.path.isdir(target):
            raise PipelineError(f"{flag}: {target}: is a folder, not a file; choose another {flag}")
    if tmp_too and os.path.lexists(tmp) and not force:
        raise PipelineError(
            f"{flag}: {tmp}: exists (the temporary file this command would write); remove it or give --force"
        )
    if os.path.lexists(path) and not force and not _is_own(is_own, path):
        kind = " (a checkpoint)" if _looks_like_checkpoint(path) else ""
        raise PipelineError(
            f"{flag}: {path}: exists and is not this command's output{kind}; choose a new {flag} or give --force"
        )


@contextlib.contextmanager
def output_file(
    path: str, *, is_own: IsOwn, force: bool = False, flag: str = "--out", reads: Sequence[str] = ()
) -> Iterator[str]:
    """:func:`claim_output`, then yield ``path + '.tmp'`` to be written: renamed to ``path`` if the block succeeds,
    else removed. Checked again just before the write, so a file that appeared meanwhile is not lost either."""
    claim_output(path, is_own=is_own, force=force, flag=flag, reads=reads)
    with atomic_path(path) as tmp:
        yield tmp
        _check(path, is_own, force, flag, reads, tmp_too=False)


def _is_own(is_own: IsOwn, path: str) -> bool:
    try:
        return bool(os.path.isfile(path) and is_own(path))
    except Exception:  # a file the recogniser cannot read is not this command's
        return False


def _looks_like_checkpoint(path: str) -> bool:
    """A ``.pt`` name or the zip container of ``torch.save``."""
    try:
        with open(path, "rb") as f:
            return path.endswith(".pt") or f.read(4) == b"PK\x03\x04"
    except OSError:
        return path.endswith(".pt")


def html_generator(tool: str) -> str:
    """The ``<meta name="generator">`` tag a page written by ``tool`` carries in its head (:func:`html_made_by`)."""
    return f'<meta name="generator" content="fairseq-vanilla {tool}">'


def html_made_by(tool: str) -> IsOwn:
    """``is_own`` of a page: its first 4 kB hold :func:`html_generator` of ``tool``."""

    def is_own(path: str) -> bool:
        with open(path, "rb") as f:
            return html_generator(tool).encode() in f.read(4096)

    return is_own


def json_with_keys(keys: Sequence[str]) -> IsOwn:
    """``is_own`` of a JSON record: a JSON object holding every one of ``keys``."""

    def is_own(path: str) -> bool:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
        return isinstance(found, dict) and all(key in found for key in keys)

    return is_own
