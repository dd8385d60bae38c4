"""How each stage of a prepared folder was made: its options and a fingerprint of its inputs, checked on every re-run.

A prepare script's stage (``raw/``, ``tok/``, ``bpe/``, ``bin/`` …) writes ``stage.txt`` into its folder before the
folder is renamed into place: one ``option KEY=VALUE`` line per option the stage depends on and one ``input NAME=SIZE
SHA256`` line per input file (the stage before it counts as one input, its own ``stage.txt``, so that a change
anywhere upstream reaches every later stage). A re-run with the same record skips the stage; with another record it
stops, naming what differs, unless ``--force`` asks for the stage to be made again. A folder made before records were
kept is checked against the prepared folder's ``bin/pipeline.txt`` where it can be and otherwise kept.
"""

import hashlib
import os
import shutil
import sys
from typing import Dict, Iterable, List, Optional, Tuple

from .io import PipelineError, read_settings

RECORD = "stage.txt"
FLAGS = {"ops": "--bpe-ops", "segmentation": "--spm (segmentation)", "lower": "--lower", "from": "--from"}


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: str) -> str:
    """``SIZE SHA256`` of a file's bytes."""
    return f"{os.path.getsize(path)} {file_sha256(path)}"


def input_fingerprints(inputs: Iterable[str], after: Iterable[str] = ()) -> Dict[str, str]:
    """``{name: SIZE SHA256}``: a file by its base name, a folder's files as ``FOLDER/RELATIVE/PATH``, and each
    earlier stage folder of ``after`` by its record (``after:NAME``; ``absent`` when it has none)."""
    found = {}
    for path in inputs:
        if os.path.isdir(path):
            base = os.path.basename(os.path.normpath(path))
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(folder, name)
                    found[os.path.join(base, os.path.relpath(full, path))] = file_fingerprint(full)
        elif os.path.isfile(path):
            found[os.path.basename(path)] = file_fingerprint(path)
        else:
            raise PipelineError(f"{path}: no such input file")
    for stage in after:
        record = os.path.join(stage, RECORD)
        name = f"after:{os.path.basename(os.path.normpath(stage))}"
        found[name] = file_fingerprint(record) if os.path.isfile(record) else "absent"
    return found


def format_record(options: Dict[str, str], inputs: Dict[str, str]) -> str:
    """The text of ``stage.txt``."""
    lines = [f"option {k}={v}" for k, v in sorted(options.items())]
    lines += [f"input {k}={v}" for k, v in sorted(inputs.items())]
    return "".join(line + "\n" for line in lines)


def parse_record(text: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(options, inputs) of a ``stage.txt``."""
    options, inputs = {}, {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        key, _, value = rest.partition("=")
        (options if kind == "option" else inputs)[key] = value
    return options, inputs


def differences(old: Tuple[Dict[str, str], Dict[str, str]], new: Tuple[Dict[str, str], Dict[str, str]]) -> List[str]:
    """What differs between two records, in words: ``--bpe-ops 10000 then, 300 now``, ``train.en changed`` …"""
    found = []
    for key in sorted(set(old[0]) | set(new[0])):
        then, now = old[0].get(key, "unset"), new[0].get(key, "unset")
        if then != now:
            found.append(f"{FLAGS.get(key, '--' + key)}: {then} then, {now} now")
    for key in sorted(set(old[1]) | set(new[1])):
        then, now = old[1].get(key), new[1].get(key)
        if then == now:
            continue
        if key.startswith("after:"):
            found.append(f"{key[len('after:') :]}/ was made otherwise since")
        elif then is None or now is None:
            found.append(f"input {key} {'added' if then is None else 'gone'}")
        else:
            found.append(f"input {key} changed ({then.split()[0]} bytes then, {now.split()[0]} now)")
    return found


def legacy_differences(options: Dict[str, str], settings_path: Optional[str]) -> List[str]:
    """For a stage folder without a record: the options that contradict the prepared folder's ``pipeline.txt``."""
    if not settings_path or not os.path.isfile(settings_path):
        return []
    settings = read_settings(settings_path)
    return [
        f"{FLAGS.get(k, '--' + k)}: {settings[k]} then, {v} now"
        for k, v in sorted(options.items())
        if k in settings and settings[k] != v
    ]


def begin_stage(
    folder: str,
    options: Dict[str, str],
    inputs: Iterable[str] = (),
    after: Iterable[str] = (),
    force: bool = False,
    legacy_settings: Optional[str] = None,
) -> str:
    """``"skip"`` if ``folder`` was made with this record; else ``"run"``, with a fresh ``folder.tmp`` holding the
    record. A folder made otherwise is an error naming the differences, or with ``force`` removed and made again."""
    folder = folder.rstrip(os.sep)
    wanted = (dict(options), input_fingerprints(inputs, after))
    record = os.path.join(folder, RECORD)
    if os.path.isdir(folder):
        if os.path.isfile(record):
            with open(record, encoding="utf-8") as f:
                diffs = differences(parse_record(f.read()), wanted)
        else:
            diffs = legacy_differences(wanted[0], legacy_settings)
            if not diffs:
                print(f"warning: {folder}: made before stage records were kept; kept unchecked", file=sys.stderr)
        if not diffs:
            return "skip"
        if not force:
            raise PipelineError(
                f"{folder}: made with other options or inputs ({'; '.join(diffs)}): "
                "start over with --force (remakes what differs) or a new --out"
            )
        shutil.rmtree(folder)
    tmp = folder + ".tmp"
    if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    with open(os.path.join(tmp, RECORD), "w", encoding="utf-8") as f:
        f.write(format_record(*wanted))
    return "run"
