"""The text steps of the pipeline as rows of the command line (``python -m fairseq_vanilla COMMAND``): each a
:class:`Command` with its arguments, the call it makes and what it prints; ``__main__.py`` builds the parser."""

import argparse
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from .augmentation import augment_file
from .cleaning import clean
from .imdb import imdb_extract
from .io import check_parallel, count_lines, report_long_lines
from .labelled import labelled_extract
from .moses import detokenize, tokenize
from .output_dirs import check_train_save, claim_output_dir, commit_output_dir
from .provenance import begin_stage
from .segmentation import spm_encode, spm_train
from .synthetic import write_corpus

Argument = Tuple[tuple, dict]  # the positional and keyword arguments of one ``add_argument`` call


def arg(*names: str, **options) -> Argument:
    """One ``ArgumentParser.add_argument(*names, **options)`` call, written down for ``__main__.build_parser``."""
    return names, options


@dataclass(frozen=True)
class Command:
    """One subcommand: its arguments, the call it makes and how its result is printed (``None``: not at all)."""

    name: str
    help: str
    arguments: Sequence[Argument]
    call: Callable[[argparse.Namespace], object]
    show: Optional[Callable[[object], str]] = None


def key_values(result: dict) -> str:
    """``{"aer": 0.25, "sentences": 3}`` → ``aer=0.2500 sentences=3``."""
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())


TEXT_COMMANDS = (
    Command(
        "check-parallel",
        "equal line counts, UTF-8, non-empty",
        [
            arg("src"),
            arg("tgt"),
            arg("--no-empty-lines", action="store_true", help="also refuse empty lines"),
            arg(
                "--labels",
                nargs=2,
                default=("", ""),
                metavar=("SRC_NAME", "TGT_NAME"),
                help="names for the two files in error messages",
            ),
        ],
        lambda a: check_parallel(a.src, a.tgt, allow_empty_lines=not a.no_empty_lines, labels=a.labels),
        str,
    ),
    Command(
        "tokenize",
        "Moses normalise + tokenise",
        [
            arg("--lang", required=True),
            arg("--lower", action="store_true"),
            arg("inp"),
            arg("out"),
        ],
        lambda a: tokenize(a.lang, a.inp, a.out, lower=a.lower),
    ),
    Command(
        "detokenize",
        "Moses detokenise",
        [
            arg("--lang", required=True),
            arg("inp"),
            arg("out"),
        ],
        lambda a: detokenize(a.lang, a.inp, a.out),
    ),
    Command(
        "clean",
        "clean-corpus-n",
        [
            arg("src_in"),
            arg("tgt_in"),
            arg("src_out"),
            arg("tgt_out"),
            arg("--min", type=int, default=1),
            arg("--max", type=int, default=250),
            arg("--ratio", type=float, default=1.5),
        ],
        lambda a: clean(a.src_in, a.tgt_in, a.src_out, a.tgt_out, a.min, a.max, a.ratio),
        str,
    ),
    Command(
        "spm-train",
        "learn a joint sentencepiece model",
        [
            arg("--model-prefix", required=True),
            arg("--vocab-size", type=int, required=True),
            arg("inputs", nargs="+"),
        ],
        lambda a: spm_train(a.inputs, a.model_prefix, a.vocab_size),
    ),
    Command(
        "spm-encode",
        "segment a file with a sentencepiece model",
        [
            arg("--model", required=True),
            arg("inp"),
            arg("out"),
        ],
        lambda a: spm_encode(a.model, a.inp, a.out),
    ),
    Command(
        "imdb-extract",
        "aclImdb archive or folder → {train,valid,test}.{txt,label}",
        [
            arg(
                "--from", dest="source", required=True, help="aclImdb_v1 .tar.gz, or the aclImdb folder (or its parent)"
            ),
            arg("--out", required=True),
            arg(
                "--valid-size", type=int, default=2500, help="reviews held out of train for validation, label-balanced"
            ),
            arg("--seed", type=int, default=1),
        ],
        lambda a: imdb_extract(a.source, a.out, a.valid_size, a.seed),
        key_values,
    ),
    Command(
        "labelled-extract",
        "labelled text (a label<TAB>text file, or a folder of label subfolders of .txt files) → {split}.txt, .label",
        [arg(f"--{split}", required=True, help="TSV file or folder") for split in ("train", "valid", "test")]
        + [arg("--out", required=True)],
        lambda a: labelled_extract({"train": a.train, "valid": a.valid, "test": a.test}, a.out),
        key_values,
    ),
    Command(
        "augment",
        "offline random deletion + random swap: writes the doubled training set",
        [
            arg("text_in"),
            arg("label_in"),
            arg("text_out"),
            arg("label_out"),
            arg("--deletion", type=float, default=0.2),
            arg("--swap", type=float, default=0.2),
            arg("--seed", type=int, default=1),
        ],
        lambda a: augment_file(a.text_in, a.label_in, a.text_out, a.label_out, a.deletion, a.swap, a.seed),
        str,
    ),
    Command("count", "number of lines", [arg("path")], lambda a: count_lines(a.path), str),
    Command(
        "count-long",
        "warn (on stdout) about lines longer than --max-tokens tokens, per file, with their count and line numbers",
        [
            arg("paths", nargs="+"),
            arg("--max-tokens", type=int, required=True),
            arg("--why", default="", help="text appended to each warning"),
        ],
        lambda a: report_long_lines(a.paths, a.max_tokens, a.why),
        lambda text: text,
    ),
    Command(
        "stage",
        "begin a prepare stage: prints skip (made with these options and inputs) or run (FOLDER.tmp made)",
        [
            arg("folder"),
            arg("--option", action="append", default=[], metavar="KEY=VALUE", help="an option the stage depends on"),
            arg("--input", action="append", default=[], help="an input file or folder (fingerprinted)"),
            arg("--after", action="append", default=[], help="an earlier stage folder this one reads"),
            arg("--force", action="store_true", help="remake a stage made otherwise instead of stopping"),
            arg("--legacy-settings", help="pipeline.txt to check a stage made before records were kept against"),
        ],
        lambda a: begin_stage(
            a.folder,
            dict(o.split("=", 1) for o in a.option),
            a.input,
            a.after,
            a.force,
            a.legacy_settings,
        ),
        str,
    ),
    Command(
        "claim-output",
        "start replacing an output folder: refused unless new, empty or the tool's own; prints the .tmp to write",
        [
            arg("path"),
            arg("--tool", required=True, help="the tool named in the folder's marker"),
            arg("--keep", action="append", default=[], help="a path the tool reads: never inside the folder"),
            arg("--label", default="--out", help="the option that named the folder, for messages"),
            arg("--force", action="store_true", help="write into a folder the tool did not make"),
        ],
        lambda a: claim_output_dir(a.path, a.tool, force=a.force, flag=a.label, reads=a.keep),
        str,
    ),
    Command(
        "commit-output",
        "replace the output folder by its complete .tmp (checked again)",
        [
            arg("path"),
            arg("--tool", required=True),
            arg("--keep", action="append", default=[]),
            arg("--label", default="--out"),
            arg("--force", action="store_true"),
        ],
        lambda a: commit_output_dir(a.path, a.tool, force=a.force, flag=a.label, reads=a.keep),
    ),
    Command(
        "check-train-save",
        "refuse a --save folder a training must not write into (a file, a prepared corpus, others' files, an average)",
        [arg("path"), arg("--label", default="--save", help="the option that named the folder, for messages")],
        lambda a: check_train_save(a.path, a.label),
    ),
    Command(
        "synthetic",
        "the built-in English→German toy corpus: {train,valid,test}.{en,de}",
        [
            arg("--out", required=True, help="output folder"),
            arg("--train", type=int, default=12000, help="training pairs"),
            arg("--valid", type=int, default=500, help="validation pairs"),
            arg("--test", type=int, default=500, help="test pairs"),
            arg("--seed", type=int, default=1, help="random seed"),
        ],
        lambda a: write_corpus(a.out, (("train", a.train), ("valid", a.valid), ("test", a.test)), a.seed),
    ),
)
