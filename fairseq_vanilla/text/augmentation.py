"""Random deletion and random swap (Wei & Zou 2019, "EDA", §2): text augmentation for classification.

Both act on a list of *words*; a word may be any object (a string, or the list of subword ids that spell it),
so the same functions serve the offline augmentation of tokenised text (``scripts/prepare-imdb.sh --augment``)
and the on-the-fly augmentation of binarised BPE pieces (``imdb_classification --random-deletion/--random-swap``).
Neither changes a label; both take an explicit ``numpy.random.Generator`` so that a seed fixes the result.
Plain Python and numpy; :func:`augment_file` is the offline case over a text file and its labels.
"""

from typing import List, Sequence, TypeVar

import numpy as np

from .io import PipelineError, read_lines, write_lines

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


def augment_file(
    text_in: str, label_in: str, text_out: str, label_out: str, deletion: float, swap: float, seed: int
) -> int:
    """Offline EDA (Trans-2): every review, then an augmented copy of it (word-level random deletion, then swap).

    The output holds twice the lines of the input, labels copied; returns that count."""
    texts, labels = read_lines(text_in), read_lines(label_in)
    if len(texts) != len(labels):
        raise PipelineError(f"{text_in} has {len(texts)} lines but {label_in} has {len(labels)}")
    rng = np.random.default_rng(seed)
    aug = [" ".join(augment(t.split(), deletion, swap, rng)) for t in texts]
    write_lines(text_out, texts + aug)
    write_lines(label_out, labels + labels)
    return 2 * len(texts)
