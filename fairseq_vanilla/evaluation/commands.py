"""The evaluation steps of the pipeline as rows of the command line (``python -m fairseq_vanilla COMMAND``):
hypotheses out of fairseq-generate's output, compound splitting, alignment symmetrisation and agreement."""

from ..text.commands import Command, arg, key_values
from .alignment import alignment_agreement, symmetrize
from .translation import compound_split, extract_hypotheses

EVALUATION_COMMANDS = (
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
        "compound-split",
        "split hyphenated compounds for the paper-style BLEU",
        [
            arg("inp"),
            arg("out"),
        ],
        lambda a: compound_split(a.inp, a.out),
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
)
