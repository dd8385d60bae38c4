"""Which input tokens decided a classifier's output: attention, attention rollout, gradients, and erasure tests.

Pure functions, no fairseq (torch; Captum for the gradient methods, the optional extra ``explain``). Every method
gives one score per input position, ``(B, T)``, higher = more important for the predicted class (the attention
methods give padding 0; ``explain/explainer.py`` zeroes it for the gradient methods too).

- **attention**: the last layer's self-attention, averaged over heads, read at the pooled position(s).
- **rollout** (Abnar & Zuidema 2020): per layer A' = ½·mean_heads(A) + ½·I (the residual connection), rows
  renormalised to sum to 1, then R = A'_N ··· A'_2 · A'_1: R[i, j] is how much of input j flows into position i
  at the top. How the classifier pools turns R into scores: ``first`` pooling (the ``<s>`` vector) reads the row
  of the first non-pad position, ``mean`` pooling averages the rows of all non-pad positions, because the
  classifier reads exactly that average of top-layer vectors.
- **gradient** (gradient × input, Simonyan et al. 2014; Shrikumar et al. 2017) and **integrated gradients**
  (Sundararajan et al. 2017) of the predicted class's logit with respect to the token embeddings (Captum's
  ``LayerGradientXActivation`` / ``LayerIntegratedGradients`` on the embedding layer; the caller picks the
  baseline tokens, ``explain/explainer.py`` the padding token, whose embedding is zero), summed over the embedding
  dimensions. These scores are signed: a negative score is evidence against the predicted class, and it ranks last.

Faithfulness is tested by erasure (DeYoung et al. 2020, ERASER "comprehensiveness"): delete the top k % of a
review's tokens as a method ranks them; a faithful ranking makes the predicted class's probability fall more
than a random ranking does.
"""

import math
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor, nn


def rollout(attentions: Sequence[Tensor]) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): N × ``(B, h, T, T)`` → R = A'_N ··· A'_1 ``(B, T, T)``,
    with A' = ½·mean_heads(A) + ½·I, rows renormalised."""
    joint = None
    for weights in attentions:
        a = weights.float().mean(dim=1)  # (B, T, T): mean over heads
        eye = torch.eye(a.size(-1), dtype=a.dtype, device=a.device)  # (T, T)
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)  # rows sum to 1 again
        joint = a if joint is None else torch.bmm(a, joint)  # (B, T, T): the newer layer on the left
    if joint is None:
        raise ValueError("rollout needs the attention of at least one layer")
    return joint


def pooled_scores(matrix: Tensor, padding_mask: Tensor, pooling: str) -> Tensor:
    """Rows of a ``(B, T, T)`` token-to-token matrix read where the classifier pools → scores ``(B, T)``: the first
    non-pad row (``first``), or the mean of the non-pad rows (``mean``); pad columns get 0."""
    keep = (~padding_mask).to(matrix.dtype)  # (B, T)
    if pooling == "first":
        first = (~padding_mask).to(torch.int8).argmax(dim=1)  # (B,): the <s>, after any left padding
        scores = matrix[torch.arange(matrix.size(0), device=matrix.device), first]  # (B, T)
    elif pooling == "mean":
        scores = (matrix * keep.unsqueeze(-1)).sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp(min=1)  # (B, T)
    else:
        raise ValueError(f"pooling must be 'first' or 'mean', got {pooling!r}")
    return scores * keep


def attention_scores(attentions: Sequence[Tensor], padding_mask: Tensor, pooling: str) -> Tensor:
    """Raw attention: the last layer's weights, averaged over heads, at the pooled position(s) → ``(B, T)``."""
    return pooled_scores(attentions[-1].float().mean(dim=1), padding_mask, pooling)  # mean over heads: (B, T, T)


def rollout_scores(attentions: Sequence[Tensor], padding_mask: Tensor, pooling: str) -> Tensor:
    """Attention rollout at the pooled position(s) → ``(B, T)``."""
    return pooled_scores(rollout(attentions), padding_mask, pooling)


def _captum(name: str):
    try:
        import captum.attr
    except ImportError:
        raise ImportError("the gradient methods need Captum: pip install -e '.[explain]' (captum==0.9.0)") from None
    return getattr(captum.attr, name)


def gradient_scores(
    forward: Callable[[Tensor], Tensor], embedding: nn.Module, tokens: Tensor, target: Tensor
) -> Tensor:
    """Gradient × input of logit[target] at the output of ``embedding``, summed over its dimensions → ``(B, T)``.

    ``forward``: tokens ``(B, T)`` → logits ``(B, C)``; ``target`` ``(B,)`` the class to explain."""
    method = _captum("LayerGradientXActivation")(forward, embedding)
    attributions = method.attribute(tokens, target=target)  # (B, T, d_model)
    return attributions.sum(dim=-1).detach().float()


def integrated_gradients_scores(
    forward: Callable[[Tensor], Tensor],
    embedding: nn.Module,
    tokens: Tensor,
    baseline: Tensor,
    target: Tensor,
    steps: int = 50,
) -> Tensor:
    """Integrated gradients of logit[target] along the straight line from the embedding of ``baseline`` tokens
    ``(B, T)`` to that of ``tokens``, ``steps`` Gauss-Legendre points, summed over dimensions → ``(B, T)``."""
    method = _captum("LayerIntegratedGradients")(forward, embedding)
    attributions = method.attribute(
        tokens, baselines=baseline, target=target, n_steps=steps, internal_batch_size=tokens.size(0)
    )  # (B, T, d_model)
    return attributions.sum(dim=-1).detach().float()


def random_scores(candidates: Tensor, seed: int) -> Tensor:
    """The random-ranking baseline: uniform scores in (0, 1) on ``candidates`` ``(T,)`` (bool), 0 elsewhere; the
    same ``seed`` gives the same ranking."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(candidates.shape, generator=g) * candidates.float()  # (T,)


def erasure_count(n_candidates: int, fraction: float) -> int:
    """How many tokens erasing ``fraction`` of a review removes: ⌈fraction · n⌉, at least 1, at most n."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the fraction to erase must be in (0, 1], got {fraction}")
    return min(n_candidates, max(1, math.ceil(fraction * n_candidates - 1e-9)))


def top_positions(scores: Tensor, candidates: Tensor, count: int) -> Tensor:
    """The ``count`` candidate positions with the highest scores ``(T,)`` (ties: the earlier position first)."""
    index = torch.nonzero(candidates).flatten()  # (n,)
    order = torch.argsort(-scores[index].float(), stable=True)  # descending, stable
    return index[order[:count]].sort().values


def erase(tokens: Tensor, positions: Tensor) -> Tensor:
    """``tokens`` ``(T,)`` with ``positions`` deleted (not masked: the review gets shorter) → ``(T - k,)``."""
    keep = torch.ones(tokens.size(0), dtype=torch.bool)
    keep[positions] = False
    return tokens[keep]


def comprehensiveness(full: Tensor, erased: Tensor, labels: Tensor) -> Dict[str, float]:
    """ERASER comprehensiveness (DeYoung et al. 2020) of probabilities ``(N, C)`` before and after erasure:
    the mean drop in the probability of the class predicted before, and the accuracy before and after."""
    predicted = full.argmax(dim=-1)  # (N,)
    rows = torch.arange(full.size(0))
    drop = full[rows, predicted] - erased[rows, predicted]  # (N,)
    accuracy = (predicted == labels).float().mean().item()
    accuracy_erased = (erased.argmax(dim=-1) == labels).float().mean().item()
    return {
        "probability_drop": drop.mean().item(),
        "accuracy": accuracy,
        "accuracy_erased": accuracy_erased,
        "accuracy_drop": accuracy - accuracy_erased,
    }


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the rank of each distinct value's last occurrence
    return (last - (counts - 1) / 2)[inverse]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's ρ: Pearson correlation of the (average-tie) ranks; NaN when either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else math.nan


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b: (concordant − discordant) / √((pairs − ties in a)(pairs − ties in b)); NaN if undefined."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    sa = np.sign(a[:, None] - a[None, :])  # (n, n)
    sb = np.sign(b[:, None] - b[None, :])  # (n, n)
    upper = np.triu(np.ones_like(sa, dtype=bool), 1)
    numerator = (sa * sb)[upper].sum()
    denominator = math.sqrt(np.count_nonzero(sa[upper]) * np.count_nonzero(sb[upper]))
    return float(numerator / denominator) if denominator > 0 else math.nan


def rank_correlations(scores: Dict[str, Sequence[float]]) -> Dict[str, Dict[str, float]]:
    """Spearman's ρ and Kendall's τ between every pair of methods' scores over the same tokens:
    ``{"attention~rollout": {"spearman": …, "kendall": …}, …}``."""
    names: List[str] = list(scores)
    return {
        f"{x}~{y}": {"spearman": spearman(scores[x], scores[y]), "kendall": kendall(scores[x], scores[y])}
        for i, x in enumerate(names)
        for y in names[i + 1 :]
    }
