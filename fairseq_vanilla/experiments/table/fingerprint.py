"""A job's identity: what its training was made from (the data folder's own fingerprint, the effective fairseq flags,
the scale, the row and the seed), recorded in its folder (``fingerprint.json``) and in its result file, and compared
with what the command now asks for before anything of the job is reused.

A job folder made before records were kept has no ``fingerprint.json``: its identity is read from what it does record
(each ``$ fairseq-train DATA … FLAGS`` line of its train.log, the scale of Hydra's ``.hydra/overrides.yaml``) and
recorded once the job runs again with the same identity. A result file without ``fingerprint`` is judged by its
``command`` (the data path), ``scale`` and ``flags``.
"""

import functools
import hashlib
import json
import os
import re
import shlex
from typing import Any, Dict, List, Optional, Sequence

from ...text.io import atomic_write
from ...text.provenance import file_fingerprint
from .spec import last_flags_win
from .stages import ROOT
from .validate import TableError

RECORD = "fingerprint.json"
DATA_FILES = re.compile(r"dict(\..+)?\.txt|.+\.(bin|idx)")  # what fairseq reads of a binarised folder
PATH_FLAGS = ("--user-dir", "--save-dir")  # where a job ran, not what it is


def data_folder(prepared: str, row: Dict[str, Any]) -> str:
    """The binarised folder of a row: ``bin`` of the prepared folder, or the row's ``data`` (relative to it)."""
    return os.path.normpath(os.path.join(os.path.abspath(prepared), row.get("data") or "bin"))


def data_fingerprint(folder: str) -> str:
    """16 hex digits of SHA-256 over the files fairseq reads from ``folder`` (dictionaries, .bin, .idx; subfolders
    included), each by relative path, size and SHA-256; logs and records left out. ``absent`` for no folder."""
    if not os.path.isdir(folder):
        return "absent"
    files = []
    for parent, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if DATA_FILES.fullmatch(name):
                path = os.path.join(parent, name)
                stat = os.stat(path)
                files.append((os.path.relpath(path, folder), stat.st_size, stat.st_mtime_ns))
    return _hash_files(folder, tuple(files))


@functools.lru_cache(maxsize=16)
def _hash_files(folder: str, files: tuple) -> str:
    """The hash of :func:`data_fingerprint`, once per folder and (name, size, mtime) listing in a process."""
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(f"{name} {file_fingerprint(os.path.join(folder, name))}\n".encode())
    return digest.hexdigest()[:16]


def job_identity(row_id: str, seed: int, scale: str, data: str, criterion: Sequence[str], flags: Sequence[str]):
    """What determines a job: row, seed, scale, data folder (path and fingerprint), criterion flags, train flags."""
    return dict(
        row=row_id,
        seed=seed,
        scale=scale,
        data=data,
        data_fingerprint=data_fingerprint(data),
        criterion=list(criterion),
        flags=list(flags),
    )


def command_identity(command: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The identity a ``fairseq-train DATA ARGS…`` command gives: its data folder, the repository it ran from
    (``--user-dir``'s parent) and its arguments without paths; None for another command."""
    if len(command) < 2 or os.path.basename(command[0]) != "fairseq-train":
        return None
    groups = flag_groups(command[2:])
    user_dir = groups.get("--user-dir", [None])[0]
    arguments = [t for flag, values in groups.items() if flag not in PATH_FLAGS for t in (flag, *values)]
    return dict(data=command[1], root=os.path.dirname(user_dir) if user_dir else None, arguments=arguments)


def recorded(work: str) -> List[Dict[str, Any]]:
    """What a job folder says it was made from: its ``fingerprint.json``, else the identity of each sitting of its
    train.log (with the scale of its Hydra overrides); [] where nothing was trained."""
    path = os.path.join(work, RECORD)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise TableError(f"{path}: unreadable ({str(e).splitlines()[0]}); remove that job folder") from None
        if not isinstance(record, dict) or "data" not in record:
            raise TableError(f"{path}: not a job's fingerprint; remove that job folder")
        return [record]
    log = os.path.join(work, "train.log")
    if not os.path.isfile(log):
        return []
    scale = None
    overrides = os.path.join(work, ".hydra", "overrides.yaml")
    if os.path.isfile(overrides):
        with open(overrides, encoding="utf-8", errors="replace") as f:
            m = re.search(r"^- scale=(.*)$", f.read(), re.M)
        scale = m.group(1).strip().strip("'\"") if m else None
    found = []
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("$ "):
                try:
                    identity = command_identity(shlex.split(line[2:]))
                except ValueError:
                    identity = None
                if identity is None:
                    raise TableError(f"{log}: a sitting's command is not fairseq-train's ({line[2:60]!r}…)")
                found.append(dict(identity, scale=scale))
    return found


def result_identity(result: Dict[str, Any]) -> Dict[str, Any]:
    """What a result file says its job was made from: its ``fingerprint``, else its command's data folder, its scale
    and its flags."""
    if isinstance(result.get("fingerprint"), dict):
        return result["fingerprint"]
    command = result.get("command")
    try:
        identity = command_identity(shlex.split(command)) if isinstance(command, str) else None
    except ValueError:
        identity = None
    return {**{k: v for k, v in (identity or {}).items() if k != "arguments"}, **{
        "scale": result.get("scale"), "flags": result.get("flags")}}  # fmt: skip


def same_folder(then: str, then_root: Optional[str], now: str) -> bool:
    """The same folder: the same real path, or the same path inside the repository copy each ran from."""
    if os.path.realpath(then) == os.path.realpath(now):
        return True
    if not then_root:
        return False
    inside_then, inside_now = os.path.relpath(then, then_root), os.path.relpath(os.path.realpath(now), ROOT)
    return not inside_then.startswith("..") and inside_then == inside_now


def flag_groups(tokens: Sequence[str]) -> Dict[str, List[str]]:
    """``--flag value…`` groups, the last of a flag given twice kept (fairseq reads the last)."""
    groups: Dict[str, List[str]] = {}
    for token in last_flags_win(tokens):
        if token.startswith("--") or not groups:
            groups[token] = []
        else:
            groups[list(groups)[-1]].append(token)
    return groups


def flag_changes(then: Sequence[str], now: Sequence[str]) -> List[str]:
    """``--lr 0.5 then, 1 now`` for each flag whose value differs (``set``: a flag without a value; ``unset``: not
    given)."""
    a, b = flag_groups(then), flag_groups(now)

    def value(groups, flag):
        return "unset" if flag not in groups else " ".join(groups[flag]) or "set"

    flags = list(a) + [f for f in b if f not in a]
    return [f"{f} {value(a, f)} then, {value(b, f)} now" for f in flags if a.get(f) != b.get(f)]


def differences(then: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """What differs between a recorded identity and the one asked for now, in words (``on data X (fingerprint a),
    not Y (fingerprint b)``, ``at scale A, not B``, ``with other flags (--lr 0.5 then, 1 now)``); [] if agreed."""
    found = []
    if then.get("data_fingerprint") is not None:
        if then["data_fingerprint"] != now["data_fingerprint"]:
            found.append(f"on data {then.get('data')} (fingerprint {then['data_fingerprint']}), not {now['data']} "
                         f"(fingerprint {now['data_fingerprint']})")  # fmt: skip
    elif then.get("data") is not None and not same_folder(then["data"], then.get("root"), now["data"]):
        found.append(f"on data {then['data']}, not {now['data']}")
    for key, words in (("scale", "at scale"), ("row", "as row"), ("seed", "with seed")):
        if then.get(key) is not None and then[key] != now[key]:
            found.append(f"{words} {then[key]}, not {now[key]}")
    if "arguments" in then:
        changed = flag_changes(then["arguments"], [*now["criterion"], *now["flags"]])
    else:
        changed = flag_changes(then.get("criterion", now["criterion"]), now["criterion"])
        changed += flag_changes(then["flags"], now["flags"]) if then.get("flags") is not None else []
    if changed:
        more = f"; and {len(changed) - 3} more" if changed[3:] else ""
        found.append(f"with other flags ({'; '.join(changed[:3])}{more})")
    return found


def check_job_folder(work: str, now: Dict[str, Any], job: str, out: str) -> None:
    """A :class:`TableError` (one line: what differs) if the job folder ``work`` was made from anything else than
    ``now``."""
    for then in recorded(work):
        found = differences(then, now)
        if found:
            raise TableError(f"--out {out}: job {job} was trained {'; '.join(found)}; use another --out or remove that "
                             f"job folder ({work})")  # fmt: skip


def record(work: str, now: Dict[str, Any]) -> None:
    """Write the job folder's ``fingerprint.json`` (after :func:`check_job_folder`: it agrees with what is there)."""
    os.makedirs(work, exist_ok=True)
    with atomic_write(os.path.join(work, RECORD)) as f:
        json.dump(now, f, indent=1, ensure_ascii=False)
