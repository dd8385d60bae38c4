"""``fairseq-generate --replace-unk`` works: the bare flag copies the aligned source word, alignments are read right.

Two defects of fairseq 0.12 stop it: the flag's bare form (``--replace-unk`` without a file) stores the constant
``"@@ "``, which ``load_align_dict`` then tries to open as a file; and ``replace_unk`` indexes the alignment by target
position, while ``--print-alignment`` hands it a list of ``(source, target)`` pairs, or with ``soft`` a row of
probabilities per target position (TypeError on the first ``<unk>``). Here the bare flag means "copy the aligned
source word" (fairseq's documented behaviour), pairs are read as pairs, a soft row by its most probable source
token, and a missing alignment is an error that says to add ``--print-alignment``.
"""

from typing import Dict, Optional

from .patching import replace, upstream

DEFECT = (
    "--replace-unk without a file opens the constant '@@ ' as a file, and replace_unk indexes "
    "--print-alignment's (source, target) pairs by target position (TypeError on the first <unk>)"
)
UPSTREAM = "fairseq/utils.py load_align_dict and replace_unk; fairseq/options.py --replace-unk const='@@ '"
CHECKED_AGAINST = "0.12.3.1"

BARE_FLAG = "@@ "  # fairseq's argparse const for --replace-unk given without a value


def load_align_dict(replace_unk: Optional[str]) -> Optional[Dict[str, str]]:
    """fairseq's ``load_align_dict``, except that the bare flag means "no dictionary: copy the source word"."""
    if replace_unk == BARE_FLAG:
        return {}
    from fairseq import utils

    return upstream(utils, "load_align_dict")(replace_unk)


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
    """Replace ``fairseq.utils.load_align_dict`` and ``fairseq.utils.replace_unk`` (idempotent)."""
    from fairseq import utils

    replace(utils, "load_align_dict", load_align_dict)
    replace(utils, "replace_unk", replace_unk)
