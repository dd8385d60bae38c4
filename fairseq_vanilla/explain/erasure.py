"""Faithfulness of the attribution methods by erasure (DeYoung et al. 2020, ERASER comprehensiveness), on test reviews.

For each review and method: delete the top k % of the review's tokens (``<s>``/``</s>`` never), and measure how much
the probability of the class predicted on the full review falls, and how much accuracy falls; a random ranking
(seeded per review) is the floor a faithful method must beat. Also the rank correlation (Spearman's ρ, Kendall's τ)
between the methods' token scores, per review, averaged. Tokens here are the model's (BPE pieces), not words.
"""

import math
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

from ..evaluation.attribution import (
    comprehensiveness,
    erase,
    erasure_count,
    random_scores,
    rank_correlations,
    top_positions,
)
from ..evaluation.significance import mean_std, paired_seed_comparison
from .explainer import METHODS, content_mask, probabilities, token_scores

FRACTIONS = (0.01, 0.05, 0.10, 0.20)


def load_classifier(checkpoint: str, data_bin: str):
    """(model in eval mode, task) of a classifier checkpoint, its data read from ``data_bin``."""
    from fairseq import checkpoint_utils

    from .. import register
    from ..tasks.text_classification import TextClassificationTask

    register()  # the task and models, the safe loader
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data_bin})
    if not isinstance(task, TextClassificationTask) or not hasattr(models[0], "pooling"):
        raise ValueError(f"{checkpoint}: not a vanilla_transformer_classifier checkpoint")
    return models[0].eval(), task


def pick_reviews(n_reviews: int, limit: int, seed: int) -> List[int]:
    """``limit`` review indices of ``n_reviews``, a seeded random choice (test sets are often sorted by label)."""
    order = np.random.default_rng(seed).permutation(n_reviews)
    return sorted(order[:limit].tolist())


def _collate(rows: Sequence[Tensor], dictionary, left_pad: bool) -> Tensor:
    from fairseq.data import data_utils

    return data_utils.collate_tokens(list(rows), dictionary.pad(), left_pad=left_pad)  # (B, T)


def measure_batch(
    model, task, items: Sequence[dict], fractions: Sequence[float], methods: Sequence[str], seed: int, steps: int
) -> Dict[str, object]:
    """Erasure of one batch: full and erased probabilities per (method, k), labels, and per-review correlations."""
    d, left_pad = task.source_dictionary, task.cfg.left_pad
    tokens = _collate([it["source"] for it in items], d, left_pad)  # (B, T)
    labels = torch.stack([it["target"] for it in items])  # (B,)
    full = probabilities(model, tokens)  # (B, C)
    predicted = full.argmax(dim=-1)  # (B,)
    candidates = content_mask(tokens, d)  # (B, T)
    scores = {m: token_scores(model, tokens, m, predicted, d, steps) for m in methods}  # each (B, T)
    scores["random"] = torch.stack(
        [random_scores(candidates[i], seed * 1_000_003 + int(it["id"])) for i, it in enumerate(items)]
    )  # (B, T)
    erased = {}
    for method, s in scores.items():
        for fraction in fractions:
            rows = []
            for i in range(len(items)):
                n = int(candidates[i].sum())
                rows.append(erase(tokens[i], top_positions(s[i], candidates[i], erasure_count(n, fraction))))
            erased[method, fraction] = probabilities(model, _collate(rows, d, left_pad))  # (B, C)
    correlations = [
        rank_correlations({m: s[i][candidates[i]].tolist() for m, s in scores.items()}) for i in range(len(items))
    ]
    return {"full": full, "labels": labels, "erased": erased, "correlations": correlations}


def measure_checkpoint(
    model,
    task,
    split: str,
    indices: Sequence[int],
    fractions: Sequence[float] = FRACTIONS,
    methods: Sequence[str] = METHODS,
    seed: int = 1,
    batch_size: int = 16,
    steps: int = 50,
) -> Dict[str, object]:
    """The erasure test of one classifier on reviews ``indices`` of ``split``: per method and k the
    comprehensiveness figures, and the mean rank correlation of every pair of methods."""
    if split not in task.datasets:
        task.load_dataset(split)
    dataset = task.datasets[split]
    batches = []
    for start in range(0, len(indices), batch_size):
        items = [dataset[i] for i in indices[start : start + batch_size]]
        batches.append(measure_batch(model, task, items, fractions, methods, seed, steps))
    full = torch.cat([b["full"] for b in batches])  # (N, C)
    labels = torch.cat([b["labels"] for b in batches])  # (N,)
    erasure: Dict[str, Dict[str, Dict[str, float]]] = {}
    for method in [*methods, "random"]:
        erasure[method] = {
            f"{fraction:g}": comprehensiveness(
                full, torch.cat([b["erased"][method, fraction] for b in batches]), labels
            )
            for fraction in fractions
        }
    per_review = [c for b in batches for c in b["correlations"]]
    correlation = {
        pair: {kind: _nanmean([c[pair][kind] for c in per_review]) for kind in ("spearman", "kendall")}
        for pair in per_review[0]
    }
    accuracy = (full.argmax(dim=-1) == labels).float().mean().item()
    return {"reviews": len(indices), "accuracy": accuracy, "erasure": erasure, "correlation": correlation}


def _nanmean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def summarise(per_checkpoint: Sequence[Dict[str, object]]) -> Dict[str, object]:
    """Mean ± sample standard deviation over classifiers of every figure of :func:`measure_checkpoint`."""
    first = per_checkpoint[0]
    erasure = {
        method: {
            k: {
                figure: mean_std([r["erasure"][method][k][figure] for r in per_checkpoint])
                for figure in ("probability_drop", "accuracy_drop")
            }
            for k in by_k
        }
        for method, by_k in first["erasure"].items()
    }
    correlation = {
        pair: {kind: mean_std([r["correlation"][pair][kind] for r in per_checkpoint]) for kind in kinds}
        for pair, kinds in first["correlation"].items()
    }
    return {
        "accuracy": mean_std([r["accuracy"] for r in per_checkpoint]),
        "erasure": erasure,
        "correlation": correlation,
        "paired": paired_differences(per_checkpoint) if len(per_checkpoint) > 1 else {},
    }


def paired_differences(per_checkpoint: Sequence[Dict[str, object]], figure: str = "probability_drop") -> Dict:
    """Every later method against every earlier one (``"B~A"``: B − A), per k, paired over the same classifiers."""
    methods = list(per_checkpoint[0]["erasure"])
    out = {}
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            out[f"{b}~{a}"] = {
                k: paired_seed_comparison(
                    [r["erasure"][a][k][figure] for r in per_checkpoint],
                    [r["erasure"][b][k][figure] for r in per_checkpoint],
                )
                for k in per_checkpoint[0]["erasure"][a]
            }
    return out
