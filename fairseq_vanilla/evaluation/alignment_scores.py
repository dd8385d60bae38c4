"""Hard word links from soft source-target scores (attention weights or gradient saliency) and their AER.

Pure functions (torch, no fairseq, no model). A soft matrix ``(T, S)`` scores, for each target position t, every
source position s. :func:`hard_links` turns it into Pharaoh links exactly as ``fairseq-generate --print-alignment``
does (fairseq's ``utils.extract_hard_alignment``): each target token that is neither padding nor ``</s>`` is linked
to its highest-scoring source token, padding and ``</s>`` columns excluded; both sides are numbered by their position
among those tokens (left padding of the source does not shift the numbers). The links are therefore comparable,
link for link, with ``runs/multi30k/align/*.align`` (BPE-level positions) and with
``fairseq_vanilla.evaluation.alignment.alignment_agreement`` of a ``fairseq-generate`` output.
"""

from typing import Dict, List, Sequence, Set, Tuple

from torch import Tensor

from .alignment import Link, agreement


def token_mask(tokens: Tensor, pad: int, eos: int) -> Tensor:
    """Token ids ``(..., L)`` → True where a token is a word piece, not padding or ``</s>``."""
    return tokens.ne(pad) & tokens.ne(eos)


def hard_links(scores: Tensor, src_valid: Tensor, tgt_valid: Tensor) -> Set[Link]:
    """One sentence: scores ``(T, S)``, masks ``(S,)`` and ``(T,)`` → {(source i, target j)}, one link per valid
    target token: its argmax over the valid source tokens (fairseq's ``extract_hard_alignment``)."""
    src_index = src_valid.nonzero(as_tuple=False).squeeze(-1)  # (S',): valid source columns
    tgt_index = tgt_valid.nonzero(as_tuple=False).squeeze(-1)  # (T',): valid target rows
    if tgt_index.numel() == 0 or src_index.numel() == 0:
        return set()
    valid = scores.float().index_select(0, tgt_index).index_select(1, src_index)  # (T', S')
    _, best = valid.max(dim=-1)  # (T',): the argmax, as fairseq takes it
    return {(i, j) for j, i in enumerate(best.tolist())}


def batch_hard_links(scores: Tensor, src_tokens: Tensor, tgt_tokens: Tensor, pad: int, eos: int) -> List[Set[Link]]:
    """A batch: scores ``(B, T, S)``, source ``(B, S)`` (any padding side), target ``(B, T)`` → B sets of links."""
    src_valid = token_mask(src_tokens, pad, eos)  # (B, S)
    tgt_valid = token_mask(tgt_tokens, pad, eos)  # (B, T)
    return [hard_links(scores[b], src_valid[b], tgt_valid[b]) for b in range(scores.size(0))]


def gradient_x_input(gradient: Tensor, embeddings: Tensor) -> Tensor:
    """Saliency of each source token: |Σ_d ∂log p/∂x_{s,d} · x_{s,d}|, ``(B, S, d_model)`` twice → ``(B, S)``.

    Gradient × input is the first-order (Taylor) estimate of how much log p(y_t) would change if the token's
    embedding were removed; the absolute value, because a token that pushes the probability down is no less a
    token the output depends on (an alignment asks *which*, not *in which direction*)."""
    return (gradient.float() * embeddings.float()).sum(dim=-1).abs()  # (B, S)


def gradient_norm(gradient: Tensor) -> Tensor:
    """Saliency of each source token as the gradient's length alone, ‖∂log p/∂x_s‖₂: ``(B, S, d_model)`` → ``(B, S)``
    (how sensitive log p(y_t) is to the token, whatever its embedding; a second reading of the same gradients)."""
    return gradient.float().norm(dim=-1)  # (B, S)


def aer(predicted: Sequence[Set[Link]], reference: Sequence[Set[Link]]) -> float:
    """Corpus AER of predicted links against reference links (all "sure": 1 − F1, Och & Ney 2003)."""
    return agreement(list(predicted), list(reference))["aer"]


def same_source_fraction(first: Sequence[Set[Link]], second: Sequence[Set[Link]]) -> float:
    """Of the target tokens linked in both, the fraction linked to the same source token (each side at most one
    link per target token, as :func:`hard_links` gives). With one link per target token on both sides this is
    1 − AER of one against the other."""
    same = total = 0
    for a, b in zip(first, second, strict=True):
        source_of = {j: i for i, j in a}  # target → source
        for i, j in b:
            if j in source_of:
                total += 1
                same += source_of[j] == i
    return same / total if total else 0.0


def best_head(aer_by_head: Sequence[float]) -> Tuple[int, float]:
    """The head with the lowest AER (the first, if tied) and that AER."""
    head = min(range(len(aer_by_head)), key=lambda k: aer_by_head[k])
    return head, aer_by_head[head]


def summarise(
    by_head: Sequence[Sequence[Sequence[Set[Link]]]],
    by_layer_mean: Sequence[Sequence[Set[Link]]],
    gradients: Dict[str, Sequence[Set[Link]]],
    reference: Sequence[Set[Link]],
) -> Dict:
    """Links per layer × head, per layer (heads averaged) and from gradients (one set per saliency) → the AER table
    and the agreement of each gradient alignment with the best single attention head (over all layers and heads)
    and with the best layer's head average."""
    head_aer = [[aer(links, reference) for links in layer] for layer in by_head]  # (N, h)
    mean_aer = [aer(links, reference) for links in by_layer_mean]  # (N,)
    best = [best_head(row) for row in head_aer]
    top_layer = min(range(len(best)), key=lambda n: best[n][1])
    top_head = best[top_layer][0]
    mean_layer = min(range(len(mean_aer)), key=lambda n: mean_aer[n])
    head_links, mean_links = by_head[top_layer][top_head], by_layer_mean[mean_layer]

    def rounded(found: Dict) -> Dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()}

    return {
        "aer_by_layer_and_head": [[round(x, 4) for x in row] for row in head_aer],
        "aer_head_average": [round(x, 4) for x in mean_aer],
        "best_head": [{"head": k, "aer": round(x, 4)} for k, x in best],
        "gradient": {name: rounded(agreement(list(links), list(reference))) for name, links in gradients.items()},
        "best_head_overall": {"layer": top_layer, "head": top_head},
        "best_head_average_layer": mean_layer,
        "gradient_vs_attention": {
            name: {
                "same_source_as_best_head": round(same_source_fraction(links, head_links), 4),
                "aer_against_best_head": round(aer(links, head_links), 4),
                "same_source_as_best_head_average": round(same_source_fraction(links, mean_links), 4),
                "aer_against_best_head_average": round(aer(links, mean_links), 4),
            }
            for name, links in gradients.items()
        },
    }
