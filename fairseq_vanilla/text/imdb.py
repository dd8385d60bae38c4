"""The IMDB review corpus (Maas et al. 2011, aclImdb): reviews and labels out of the archive or its folder.

Reviews lose their HTML line breaks (:func:`clean_review`, also what the classifier hub applies to raw text);
the official training set gives train and a label-balanced valid, the official test set gives test.
"""

import os
import re
from typing import Callable, Dict, List, Tuple

from .io import PipelineError, write_lines

IMDB_LABELS = ("neg", "pos")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/([^/]+)/([^/]+\.txt)$")

Reviews = Dict[Tuple[str, str], List[Tuple[str, str]]]  # (split, label) → [(file name, review text), …]


def clean_review(text: str) -> str:
    """HTML line breaks (``<br />``) and runs of white space become one space."""
    return " ".join(_BR.sub(" ", text).split())


def _read_folder(source: str, add: Callable[[str, Callable[[], bytes]], None]) -> None:
    """Every review file of an unpacked aclImdb folder (or a folder holding one), passed to ``add``."""
    root = source if os.path.basename(os.path.normpath(source)) == "aclImdb" else os.path.join(source, "aclImdb")
    if not os.path.isdir(root):
        raise PipelineError(f"{source}: neither an aclImdb folder nor a folder holding one")
    for split in ("train", "test"):
        for label in IMDB_LABELS:
            folder = os.path.join(root, split, label)
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                add("aclImdb/" + os.path.relpath(path, root), lambda path=path: open(path, "rb").read())


def _read_archive(source: str, add: Callable[[str, Callable[[], bytes]], None]) -> None:
    """Every file of a tar archive (aclImdb_v1.tar.gz), passed to ``add``."""
    import tarfile

    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                if member.isfile():
                    add(member.name, lambda member=member: tar.extractfile(member).read())
    except (tarfile.TarError, EOFError, OSError) as e:
        raise PipelineError(f"{source}: not a readable tar archive ({e})") from None


def imdb_reviews(source: str) -> Reviews:
    """{(split, label): [(name, text), …]} from the aclImdb archive (.tar.gz) or its unpacked folder, sorted by
    file name."""
    found: Reviews = {(split, label): [] for split in ("train", "test") for label in IMDB_LABELS}

    def add(member: str, read: Callable[[], bytes]) -> None:
        m = _MEMBER.search(member)
        if m and (m.group(1), m.group(2)) in found:
            raw = read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise PipelineError(
                    f"{source}: {member}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})"
                ) from None
            text = clean_review(text)
            if not text:
                raise PipelineError(f"{source}: {member}: empty review")
            found[(m.group(1), m.group(2))].append((m.group(3), text))

    if os.path.isdir(source):
        _read_folder(source, add)
    elif os.path.isfile(source):
        _read_archive(source, add)
    else:
        raise PipelineError(f"{source}: no such file or folder")
    for (split, label), reviews in found.items():
        if not reviews:
            raise PipelineError(f"{source}: aclImdb/{split}/{label}/ is missing or holds no review (*.txt)")
        reviews.sort(key=lambda r: (len(r[0]), r[0]))
    return found


def imdb_extract(source: str, out_dir: str, valid_size: int = 2500, seed: int = 1) -> Dict[str, int]:
    """Write ``{train,valid,test}.txt`` (one review a line, HTML line breaks removed) and ``.label`` (neg/pos).

    valid: ``valid_size`` reviews held out from the official training set, half of each label, chosen with
    ``seed``; test: the official test set, whole. Returns the number of reviews per split."""
    import numpy as np

    reviews = imdb_reviews(source)
    if valid_size % len(IMDB_LABELS) or valid_size < 0:
        raise PipelineError(
            f"--valid-size must be a non-negative multiple of {len(IMDB_LABELS)} (label-balanced), got {valid_size}"
        )
    rng = np.random.default_rng(seed)
    splits = {"train": [], "valid": [], "test": []}
    for label in IMDB_LABELS:
        train = reviews[("train", label)]
        per_label = valid_size // len(IMDB_LABELS)
        if per_label >= len(train):
            raise PipelineError(
                f"--valid-size {valid_size} leaves no {label!r} review for training ({len(train)} there)"
            )
        held = set(rng.permutation(len(train))[:per_label].tolist())
        splits["valid"] += [(t, label) for i, (_, t) in enumerate(train) if i in held]
        splits["train"] += [(t, label) for i, (_, t) in enumerate(train) if i not in held]
        splits["test"] += [(t, label) for _, t in reviews[("test", label)]]
    for split, rows in splits.items():
        if not rows:
            continue
        write_lines(os.path.join(out_dir, f"{split}.txt"), [text for text, _ in rows])
        write_lines(os.path.join(out_dir, f"{split}.label"), [label for _, label in rows])
    return {split: len(rows) for split, rows in splits.items()}
