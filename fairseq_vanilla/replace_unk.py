"""Make ``fairseq-generate --replace-unk`` work in fairseq 0.12 (installed when ``fairseq_vanilla`` is imported).

Two defects of fairseq 0.12 stop it: the flag's bare form (``--replace-unk`` without a file) stores the constant
``"@@ "``, which ``load_align_dict`` then tries to open as a file; and ``replace_unk`` indexes the alignment by target
position, while ``--print-alignment`` hands it a list of ``(source, target)`` pairs, or with ``soft`` a row of
probabilities per target position (TypeError on the first ``<unk>``). Here the bare flag means "copy the aligned
source word" (fairseq's documented behaviour), pairs are read as pairs, a soft row by its most probable source
token, and a missing alignment is an error that says to add ``--print-alignment``.
"""
from typing import Dict, Optional

from fairseq import utils

BARE_FLAG = "@@ "  # fairseq's argparse const for --replace-unk given without a value

_original_load_align_dict = utils.load_align_dict


def load_align_dict(replace_unk: Optional[str]) -> Optional[Dict[str, str]]:
    if replace_unk == BARE_FLAG:
        return {}  # no dictionary: copy the source word
    return _original_load_align_dict(replace_unk)


def replace_unk(hypo_str: str, src_str: str, alignment, align_dict: Dict[str, str], unk: str) -> str:
    """Replace each ``unk`` of the hypothesis by (the dictionary entry of) the source token it is aligned to."""
    hypo_tokens = hypo_str.split()
    if unk not in hypo_tokens:
        return hypo_str
    if alignment is None or len(alignment) == 0:
        raise ValueError("--replace-unk needs the alignment of each hypothesis: add --print-alignment (hard)")
    src_tokens = src_str.split() + ["<eos>"]
    if isinstance(alignment[0], tuple):  # --print-alignment (hard): [(source index, target index), …]
        source_of = {int(t): int(s) for s, t in alignment}
    else:  # --print-alignment soft: one row of source probabilities (strings) per target position
        source_of = {t: max(range(len(row)), key=lambda s: float(row[s])) for t, row in enumerate(alignment)}
    for i, token in enumerate(hypo_tokens):
        if token == unk and i in source_of and source_of[i] < len(src_tokens):
            src_token = src_tokens[source_of[i]]
            hypo_tokens[i] = align_dict.get(src_token, src_token)
    return " ".join(hypo_tokens)


def install() -> None:
    utils.load_align_dict = load_align_dict
    utils.replace_unk = replace_unk
