"""Word alignments in Pharaoh format ("i-j": source token i, target token j, 0-based): symmetrisation and agreement.

Pure Python, no fairseq. Used by ``scripts/prepare-alignments.sh`` (``python -m fairseq_vanilla symmetrize``:
eflomal's two directions → one training alignment) and by ``python -m fairseq_vanilla align-agreement`` (a model's
attention alignment against a reference).
"""

import re
from typing import Dict, Iterable, List, Set, Tuple

from ..text.io import PipelineError, read_lines, write_lines

Link = Tuple[int, int]


def parse_links(line: str, where: str = "") -> Set[Link]:
    """``"0-0 1-2"`` → ``{(0, 0), (1, 2)}``; a malformed link is an error that names the line."""
    links = set()
    for item in line.split():
        i, sep, j = item.partition("-")
        if not sep or not i.isdigit() or not j.isdigit():
            raise ValueError(f"{where}malformed alignment link {item!r} (expected i-j with 0-based integers)")
        links.add((int(i), int(j)))
    return links


def format_links(links: Iterable[Link]) -> str:
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


NEIGHBOURS = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]


def grow_diag_final_and(forward: Set[Link], reverse: Set[Link]) -> Set[Link]:
    """Koehn et al. (2003)'s grow-diag-final-and, as Moses' and fast_align's ``atools -c grow-diag-final-and``.

    Start from the intersection; repeatedly add a neighbouring (incl. diagonal) link of the union whose source
    or target word is still unaligned; finally add union links whose source *and* target words are both unaligned.
    """
    union = forward | reverse
    alignment = set(forward & reverse)
    aligned_src = {i for i, _ in alignment}
    aligned_tgt = {j for _, j in alignment}
    added = True
    while added:
        added = False
        for i, j in sorted(alignment):
            for di, dj in NEIGHBOURS:
                cand = (i + di, j + dj)
                if (
                    cand in union
                    and cand not in alignment
                    and (cand[0] not in aligned_src or cand[1] not in aligned_tgt)
                ):
                    alignment.add(cand)
                    aligned_src.add(cand[0])
                    aligned_tgt.add(cand[1])
                    added = True
    for direction in (forward, reverse):  # final-and
        for i, j in sorted(direction):
            if i not in aligned_src and j not in aligned_tgt:
                alignment.add((i, j))
                aligned_src.add(i)
                aligned_tgt.add(j)
    return alignment


def agreement(predicted: List[Set[Link]], reference: List[Set[Link]]) -> Dict[str, float]:
    """Precision, recall, F1 and AER of predicted links against reference links over a corpus.

    With one reference set (every link "sure", S = P), AER = 1 − 2|A∩S| / (|A| + |S|) (Och & Ney 2003) = 1 − F1.
    """
    if len(predicted) != len(reference):
        raise ValueError(f"{len(predicted)} predicted alignments but {len(reference)} reference alignments")
    hits = sum(len(a & s) for a, s in zip(predicted, reference))
    n_pred = sum(len(a) for a in predicted)
    n_ref = sum(len(s) for s in reference)
    precision = hits / n_pred if n_pred else 0.0
    recall = hits / n_ref if n_ref else 0.0
    f1 = 2 * hits / (n_pred + n_ref) if n_pred + n_ref else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "aer": 1.0 - f1,
        "links_predicted": n_pred,
        "links_reference": n_ref,
        "sentences": len(predicted),
    }


def symmetrize(forward: str, reverse: str, out: str, expect: int) -> None:
    """Two directions of "i-j" links (e.g. eflomal's -f and -r) → grow-diag-final-and, one line per sentence pair."""
    fwd = read_lines(forward, allow_empty_file=True)
    rev = read_lines(reverse, allow_empty_file=True)
    for path, lines in ((forward, fwd), (reverse, rev)):
        if len(lines) != expect:
            raise PipelineError(f"{path}: {len(lines)} alignment lines for {expect} sentence pairs")
    write_lines(
        out,
        [
            format_links(grow_diag_final_and(parse_links(f, f"{forward}:{n}: "), parse_links(r, f"{reverse}:{n}: ")))
            for n, (f, r) in enumerate(zip(fwd, rev), start=1)
        ],
    )


ALIGN = re.compile(r"^A-(\d+)\t(.*)$")


def alignment_agreement(gen_out: str, reference: str) -> Dict[str, float]:
    """Agreement of ``fairseq-generate --print-alignment`` links (``A-`` lines) with a reference alignment file."""
    ref_lines = read_lines(reference, allow_empty_file=True)
    ref = [parse_links(line, f"{reference}:{n}: ") for n, line in enumerate(ref_lines, 1)]
    pred = {}
    for line in read_lines(gen_out, allow_empty_file=True):
        m = ALIGN.match(line)
        if m and int(m.group(1)) not in pred:
            pred[int(m.group(1))] = parse_links(m.group(2), f"{gen_out}: A-{m.group(1)}: ")
    if set(pred) != set(range(len(ref))):
        raise PipelineError(
            f"{gen_out}: alignments for {len(pred)} sentences, {reference} has {len(ref)} "
            "(was fairseq-generate run with --print-alignment on the same split?)"
        )
    return agreement([pred[i] for i in range(len(ref))], ref)
