"""Output folders a command replaces only where it made them itself (:func:`output_dir`), and the folder a
training may write into (:func:`check_train_save`).

The rule is :mod:`fairseq_vanilla.text.outputs`' for folders: the marker file :data:`OUTPUT_MARKER` in a folder names
the tool that made it (first line) and lists the files it made with their SHA-256 (the other lines, ``sha256sum``'s
format), so a re-run replaces exactly those and nothing a user put beside them. A marker of one line (written before
the list was kept) counts only the files of the new output's names as the tool's.
"""

import contextlib
import fnmatch
import os
import shutil
import zipfile
from typing import Dict, Iterator, Optional, Sequence, Tuple

from .io import PipelineError, atomic_path
from .provenance import file_sha256

OUTPUT_MARKER = ".fairseq-vanilla-output"  # in every folder a tool makes: the tool, then "SHA256  FILE" a file made

Made = Dict[str, str]  # the files a tool made in a folder (paths relative to it) → their SHA-256


def folder_files(folder: str) -> Made:
    """Every file under ``folder`` but its marker: relative path → SHA-256."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), folder)
            if rel != OUTPUT_MARKER:
                found[rel] = file_sha256(os.path.join(folder, rel))
    return found


def read_marker(folder: str) -> Tuple[Optional[str], Optional[Made]]:
    """(tool, the files it made) of ``folder``'s marker; ``(None, None)`` without one; files ``None`` for a marker of
    one line (the list was not kept then)."""
    marker = os.path.join(folder, OUTPUT_MARKER)
    if not os.path.isfile(marker):
        return None, None
    with open(marker, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        return (lines[0].strip() if lines else None), None
    return lines[0].strip(), {rel: sha for sha, rel in (line.split("  ", 1) for line in lines[1:] if "  " in line)}


def _write_marker(folder: str, tool: str, made: Made) -> None:
    with atomic_path(os.path.join(folder, OUTPUT_MARKER)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(tool + "\n" + "".join(f"{sha}  {rel}\n" for rel, sha in sorted(made.items())))


def _holds(folder: str, path: str) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (symbolic links resolved)."""
    folder, path = os.path.realpath(folder), os.path.realpath(path)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_dir(
    path: str, tool: str, *, force: bool = False, flag: str = "--out", reads: Sequence[str] = ()
) -> Optional[Made]:
    """Raise :class:`PipelineError` (``flag path: problem``) unless ``tool`` may write into the folder ``path``;
    return the files in it that ``tool`` made and may replace or remove (``None``: a one-line marker's folder)."""
    if not path:
        raise PipelineError(f"{flag}: empty path")
    if not os.path.lexists(path):
        return {}
    if not os.path.isdir(path):
        raise PipelineError(f"{flag} {path}: exists and is not a folder")
    for read in reads:
        if read and _holds(path, read):
            raise PipelineError(f"{flag} {path}: holds {read}, which this command reads; choose another {flag}")
    owner, made = read_marker(path)
    if owner != tool and os.listdir(path):
        if force:
            return {}
        raise PipelineError(f"{flag} {path}: exists and was not made by {tool}; use --force")
    if made is None:
        return None if owner == tool else {}
    present = {rel: sha for rel, sha in made.items() if os.path.isfile(os.path.join(path, rel))}
    changed = sorted(rel for rel, sha in present.items() if file_sha256(os.path.join(path, rel)) != sha)
    if changed and not force:
        raise PipelineError(f"{flag} {path}: {changed[0]} was changed after {tool} wrote it; use --force")
    return {rel: sha for rel, sha in present.items() if rel not in changed}


def claim_output_dir(
    path: str, tool: str, *, force: bool = False, flag: str = "--out", reads: Sequence[str] = ()
) -> str:
    """Start writing the folder ``path`` for ``tool`` (:func:`check_output_dir`): return a fresh ``path + '.tmp'``
    to write the output into (an earlier one of ``tool``'s, left by a killed run, is removed; another's refused).
    Finish with :func:`commit_output_dir`."""
    path = path.rstrip(os.sep) or path
    check_output_dir(path, tool, force=force, flag=flag, reads=reads)
    tmp = path + ".tmp"
    if os.path.lexists(tmp):
        if not os.path.isdir(tmp) or (os.listdir(tmp) and read_marker(tmp)[0] != tool):
            raise PipelineError(f"{flag} {tmp}: exists and was not made by {tool}; remove it yourself")
        if any(read and _holds(tmp, read) for read in reads):
            raise PipelineError(f"{flag} {tmp}: holds a file this command reads; choose another {flag}")
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    _write_marker(tmp, tool, {})
    return tmp


def _blocked(folder: str, rel: str) -> Optional[str]:
    """The part of ``rel`` under ``folder`` that stops a file being moved there: a folder in its place, or a file
    where one of its folders would be."""
    parts = rel.split(os.sep)
    for i in range(1, len(parts) + 1):
        here = os.path.join(folder, *parts[:i])
        if os.path.lexists(here) and os.path.isdir(here) == (i == len(parts)):
            return os.path.join(*parts[:i])
    return None


def commit_output_dir(
    path: str, tool: str, *, force: bool = False, flag: str = "--out", reads: Sequence[str] = ()
) -> str:
    """Move the complete ``path + '.tmp'`` of :func:`claim_output_dir` into ``path`` (checked again just before):
    renamed whole where ``path`` is new, else file by file, replacing only what ``tool`` made there (or, with
    ``force``, files of the same names) and removing the files it made before and makes no more."""
    path = path.rstrip(os.sep) or path
    tmp = path + ".tmp"
    try:
        own = check_output_dir(path, tool, force=force, flag=flag, reads=reads)
        new = folder_files(tmp)
        if not os.path.lexists(path):
            _write_marker(tmp, tool, new)
            os.replace(tmp, path)
            return path
        if own is None:  # a one-line marker: the files of the new output's names are the tool's
            own = {rel: "" for rel in new if os.path.isfile(os.path.join(path, rel))}
        for rel in sorted(new):
            blocked = _blocked(path, rel)
            if blocked or (os.path.lexists(os.path.join(path, rel)) and rel not in own and not force):
                raise PipelineError(f"{flag} {path}: {blocked or rel} exists and was not made by {tool}; use --force")
        for rel in sorted(new):
            os.makedirs(os.path.dirname(os.path.join(path, rel)), exist_ok=True)
            os.replace(os.path.join(tmp, rel), os.path.join(path, rel))
        for rel in sorted(set(own) - set(new)):
            os.remove(os.path.join(path, rel))
            folder = os.path.dirname(rel)
            while folder and not os.listdir(os.path.join(path, folder)):  # the folders it made, left empty
                os.rmdir(os.path.join(path, folder))
                folder = os.path.dirname(folder)
        _write_marker(path, tool, new)
        return path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def output_dir(
    path: str, tool: str, *, force: bool = False, flag: str = "--out", reads: Sequence[str] = ()
) -> Iterator[str]:
    """Yield the fresh ``path + '.tmp'`` of :func:`claim_output_dir`, moved into ``path`` only if the block succeeds
    (:func:`commit_output_dir`), else removed. The one way a tool of the project writes a folder."""
    tmp = claim_output_dir(path, tool, force=force, flag=flag, reads=reads)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_output_dir(path, tool, force=force, flag=flag, reads=reads)


# -- the folder a training writes ---------------------------------------------------------------------------------

AVERAGED_FROM = "averaged_from"  # scripts/average-checkpoints.py's key in an average's state: the files it averaged
RUN_FILES = ("checkpoint*.pt", "checkpoint*.pt.tmp", "train.log", "command.sh", "test.log")  # what a training writes
DATA_FILES = ("dict.*.txt", "*.bin", "*.idx")  # fairseq-preprocess's files: a prepared corpus
TENSORBOARD = "events.out.tfevents.*"  # fairseq-train --tensorboard-logdir's files


def is_average(checkpoint: str) -> bool:
    """Whether ``checkpoint`` holds :data:`AVERAGED_FROM`, read without torch: the pickled state (``data.pkl``) of
    ``torch.save``'s zip, where the tensors are not."""
    try:
        with zipfile.ZipFile(checkpoint) as z:
            pickled = [name for name in z.namelist() if name.rsplit("/", 1)[-1] == "data.pkl"]
            return any(AVERAGED_FROM.encode() in z.read(name) for name in pickled)
    except (OSError, zipfile.BadZipFile):
        return False


def _made_by_a_tool(folder: str) -> bool:
    """A folder our tools made (a marker in it) or fairseq-train's TensorBoard logs only."""
    if read_marker(folder)[0]:
        return True
    files = [name for _, _, names in os.walk(folder) for name in names]
    return bool(files) and all(fnmatch.fnmatch(name, TENSORBOARD) for name in files)


def check_train_save(path: str, flag: str = "--save") -> None:
    """Raise :class:`PipelineError` unless a training may write into the folder ``path`` (``scripts/train.sh
    --save``): a new or empty folder, or an earlier run's (its checkpoints, logs, command and folders our tools made),
    which fairseq resumes from ``checkpoint_last.pt``. Refused: a file, a prepared corpus, a folder with other files,
    and an average as ``checkpoint_last.pt`` (it has no optimizer state: the resumed run would start again at 0
    updates with a fresh optimizer, without a word)."""
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path):
        raise PipelineError(f"{flag} {path}: exists and is not a folder")
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isdir(full) and _made_by_a_tool(full):
            continue
        if any(fnmatch.fnmatch(name, pattern) for pattern in DATA_FILES):
            raise PipelineError(f"{flag} {path}: holds {name}, a prepared corpus's file: a data folder, not a run")
        if not (os.path.isfile(full) and any(fnmatch.fnmatch(name, pattern) for pattern in RUN_FILES)):
            raise PipelineError(f"{flag} {path}: holds {name}, which training does not write; choose a new {flag}")
    last = os.path.join(path, "checkpoint_last.pt")
    if os.path.isfile(last) and is_average(last):
        raise PipelineError(
            f"{flag} {path}: checkpoint_last.pt is an average (scripts/average-checkpoints.py): resuming from it would "
            f"restart at 0 updates with a fresh optimizer; choose a new {flag}"
        )
