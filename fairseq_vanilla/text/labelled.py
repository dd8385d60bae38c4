"""Labelled text for classification: a TSV file (``label<TAB>text`` a line) or a folder of one subfolder per label
holding ``.txt`` files (one example a file), read into (label, text) pairs and written as ``{split}.txt`` + ``.label``.

Texts are put on one line (HTML line breaks and runs of white space become one space, as the classifier hub does to
raw text); labels are single tokens, as fairseq's label dictionary needs them. Every problem names the file (and
line) or the flag: a line without a tab, an empty text or label, a label with white space or one of fairseq's own
symbols, text that is not UTF-8, fewer than two training labels, a valid/test label that training never had.
"""

import os
from typing import Dict, List, Tuple

from .imdb import clean_review
from .io import PipelineError, write_lines

Example = Tuple[str, str]  # (label, text)
RESERVED = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq's dictionary symbols: not a class name


def check_label(label: str, where: str) -> str:
    """The label, if one fairseq dictionary token that is not a special symbol; else an error naming ``where``."""
    if not label:
        raise PipelineError(f"{where}: empty label")
    if len(label.split()) != 1 or label != label.strip():
        raise PipelineError(f"{where}: label {label!r} holds white space (a label is one token)")
    if label in RESERVED or label.startswith("madeupword") or label.startswith("#fairseq:"):
        raise PipelineError(f"{where}: label {label!r} is a symbol of fairseq's dictionaries")
    return label


def parse_tsv(lines: List[str], path: str) -> List[Example]:
    """``label<TAB>text`` lines (white-space-only lines skipped) → [(label, text), …], errors naming path:line."""
    examples = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if "\t" not in line:
            raise PipelineError(f"{path}: line {n}: no tab (label<TAB>text)")
        label, text = line.split("\t", 1)
        label = check_label(label.strip(), f"{path}: line {n}")
        text = clean_review(text)
        if not text:
            raise PipelineError(f"{path}: line {n}: empty text")
        examples.append((label, text))
    return examples


def _read_text(path: str) -> str:
    raw = open(path, "rb").read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PipelineError(f"{path}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None


def read_folder(path: str) -> List[Example]:
    """A folder of label subfolders, each with ``.txt`` files → [(label, text), …], by label then file name."""
    labels = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    if not labels:
        raise PipelineError(f"{path}: no label subfolder (a folder holds one subfolder of .txt files per label)")
    examples = []
    for label in labels:
        folder = os.path.join(path, label)
        check_label(label, folder)
        names = sorted((n for n in os.listdir(folder) if n.endswith(".txt")), key=lambda n: (len(n), n))
        if not names:
            raise PipelineError(f"{folder}: holds no .txt file")
        for name in names:
            text = clean_review(_read_text(os.path.join(folder, name)))
            if not text:
                raise PipelineError(f"{os.path.join(folder, name)}: empty text")
            examples.append((label, text))
    return examples


def read_labelled(path: str, flag: str) -> List[Example]:
    """[(label, text), …] of a TSV file or a label-subfolder folder; ``flag`` names the option in errors."""
    if os.path.isdir(path):
        return read_folder(path)
    if not os.path.isfile(path):
        raise PipelineError(f"{flag} {path}: no such file or folder")
    examples = parse_tsv(_read_text(path).splitlines(), path)
    if not examples:
        raise PipelineError(f"{path}: no example (label<TAB>text lines)")
    return examples


def check_labels(splits: Dict[str, List[Example]], sources: Dict[str, str]) -> List[str]:
    """The training labels (sorted), if at least two and if every other split's labels are among them."""
    known = sorted({label for label, _ in splits["train"]})
    if len(known) < 2:
        raise PipelineError(
            f"--train {sources['train']}: {len(known)} label ({', '.join(known)}); a classifier needs at least 2"
        )
    for split, examples in splits.items():
        unknown = sorted({label for label, _ in examples} - set(known))
        if unknown:
            raise PipelineError(
                f"--{split} {sources[split]}: label {unknown[0]!r} is not a training label ({', '.join(known)})"
            )
    return known


def labelled_extract(sources: Dict[str, str], out_dir: str) -> Dict[str, object]:
    """Write ``{split}.txt`` (one text a line) and ``{split}.label`` for each split of ``sources`` ({split: TSV or
    folder}, "train" among them); returns the number of examples per split and the labels."""
    splits = {split: read_labelled(path, f"--{split}") for split, path in sources.items()}
    labels = check_labels(splits, sources)
    for split, examples in splits.items():
        write_lines(os.path.join(out_dir, f"{split}.txt"), [text for _, text in examples])
        write_lines(os.path.join(out_dir, f"{split}.label"), [label for label, _ in examples])
    return {**{split: len(examples) for split, examples in splits.items()}, "labels": ",".join(labels)}
