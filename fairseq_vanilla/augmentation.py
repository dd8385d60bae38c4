"""Random deletion and random swap (Wei & Zou 2019, "EDA", §2): text augmentation for classification. Plain Python.

Both act on a list of *words*; a word may be any object (a string, or the list of subword ids that spell it),
so the same functions serve the offline augmentation of tokenised text (``scripts/prepare-imdb.sh --augment``)
and the on-the-fly augmentation of binarised BPE pieces (``imdb_classification --random-deletion/--random-swap``).
Neither changes a label; both take an explicit ``numpy.random.Generator`` so that a seed fixes the result.
"""
from typing import List, Sequence, TypeVar

import numpy as np

W = TypeVar("W")


def random_deletion(words: Sequence[W], p: float, rng: np.random.Generator) -> List[W]:
    """Drop each word independently with probability p (EDA's RD); never returns an empty list."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"random deletion probability must be in [0, 1), got {p}")
    words = list(words)
    if p == 0.0 or len(words) <= 1:
        return words
    keep = rng.random(len(words)) >= p
    if not keep.any():
        return [words[int(rng.integers(len(words)))]]  # EDA keeps one random word
    return [w for w, k in zip(words, keep) if k]


def random_swap(words: Sequence[W], p: float, rng: np.random.Generator) -> List[W]:
    """Swap two random positions n = max(1, round(p·len)) times (EDA's RS, α = p); the multiset of words is kept."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"random swap probability must be in [0, 1), got {p}")
    words = list(words)
    if p == 0.0 or len(words) < 2:
        return words
    for _ in range(max(1, round(p * len(words)))):
        i, j = rng.integers(len(words), size=2)
        words[i], words[j] = words[j], words[i]
    return words


def augment(words: Sequence[W], deletion: float, swap: float, rng: np.random.Generator) -> List[W]:
    """Random deletion, then random swap (either may be 0)."""
    return random_swap(random_deletion(words, deletion, rng), swap, rng)
