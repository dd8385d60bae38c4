"""The project's command line: the text steps the pipeline scripts call, one subcommand each.

``python -m fairseq_vanilla COMMAND …``. Every command reads UTF-8, names the file and line of any problem, exits
non-zero on it (``error: …`` on stderr, exit status 1; 2 for a usage error), and writes its output to a temporary
name that it renames on success, so an interrupted run never leaves a half file behind. Each command is one row of
:data:`COMMANDS`: its name, its arguments, the function it calls and what it prints.
"""

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from .evaluation.alignment import alignment_agreement, symmetrize
from .evaluation.translation import compound_split, extract_hypotheses
from .text.augmentation import augment_file
from .text.cleaning import clean
from .text.imdb import imdb_extract
from .text.io import (
    PipelineError,
    check_parallel,
    claim_output_dir,
    commit_output_dir,
    count_lines,
    report_long_lines,
)
from .text.moses import detokenize, tokenize
from .text.provenance import begin_stage
from .text.segmentation import spm_encode, spm_train
from .text.synthetic import write_corpus

Argument = Tuple[tuple, dict]  # the positional and keyword arguments of one ``add_argument`` call


def arg(*names: str, **options) -> Argument:
    """One ``ArgumentParser.add_argument(*names, **options)`` call, written down for :func:`build_parser`."""
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


COMMANDS = (
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
        "extract-hyps",
        "hypotheses from fairseq-generate output, checked against the source count",
        [
            arg("gen_out"),
            arg("out"),
            arg("--expect", type=int, required=True, help="number of source sentences"),
        ],
        lambda a: extract_hypotheses(a.gen_out, a.out, a.expect),
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
        "compound-split",
        "split hyphenated compounds for the paper-style BLEU",
        [
            arg("inp"),
            arg("out"),
        ],
        lambda a: compound_split(a.inp, a.out),
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
    Command(
        "symmetrize",
        "grow-diag-final-and of two alignment directions",
        [
            arg("forward"),
            arg("reverse"),
            arg("out"),
            arg("--expect", type=int, required=True, help="number of sentence pairs"),
        ],
        lambda a: symmetrize(a.forward, a.reverse, a.out, a.expect),
    ),
    Command(
        "align-agreement",
        "precision/recall/AER of fairseq-generate --print-alignment links",
        [
            arg("gen_out"),
            arg("reference"),
        ],
        lambda a: alignment_agreement(a.gen_out, a.reference),
        key_values,
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
        ],
        lambda a: claim_output_dir(a.path, a.tool, a.keep, a.label),
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
        ],
        lambda a: commit_output_dir(a.path, a.tool, a.keep, a.label),
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


def build_parser() -> argparse.ArgumentParser:
    """One argparse subparser per row of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="python -m fairseq_vanilla", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="cmd", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help)
        for names, options in command.arguments:
            sub.add_argument(*names, **options)
        sub.set_defaults(command=command)
    return parser


def main(argv=None) -> int:
    """Run one command; bad input is one ``error: …`` line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        result = args.command.call(args)
    except (PipelineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.command.show is not None:
        print(args.command.show(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
