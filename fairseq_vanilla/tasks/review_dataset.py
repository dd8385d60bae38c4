"""Reviews as classifier inputs: truncation to the model's length, framing with ``<s> … </s>``, word boundaries of
subword units for word-level augmentation, and the dataset that applies them (no task, no registry)."""

import re
from typing import Dict, List, Optional

import numpy as np
import torch
from fairseq.data import Dictionary, FairseqDataset, data_utils

from ..text.augmentation import augment

MADEUP = re.compile(r"madeupword\d{4}")


def truncate(tokens: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """The review's tokens cut to at most n: the first n ("head"), the last n ("tail"), or the first ⌊n/4⌋ and the
    last n-⌊n/4⌋ ("head_tail": Sun et al. 2019 kept 128 + 382 of 510 BERT tokens, about that ratio)."""
    if len(tokens) <= n:
        return tokens
    if mode == "head":
        return tokens[:n]
    if mode == "tail":
        return tokens[len(tokens) - n :]
    if mode == "head_tail":
        head = n // 4
        return torch.cat([tokens[:head], tokens[len(tokens) - (n - head) :]])
    raise ValueError(f"unknown truncation {mode!r}")


def frame(tokens: torch.Tensor, dictionary: Dictionary, max_positions: int, truncation: str) -> torch.Tensor:
    """A review's tokens (no ``</s>``) → ``<s> tokens </s>`` of at most ``max_positions``, truncated by
    ``truncation``."""
    tokens = truncate(tokens, max_positions - 2, truncation)
    return torch.cat([tokens.new_tensor([dictionary.bos()]), tokens, tokens.new_tensor([dictionary.eos()])])


def word_boundaries(dictionary: Dictionary) -> Dict[str, Optional[np.ndarray]]:
    """How to regroup the dictionary's subword units into words: subword-nmt marks a piece that continues into the
    next one with a trailing ``@@``; sentencepiece marks a piece that starts a word with ``▁``; else a unit is a
    word."""
    symbols = dictionary.symbols
    if any(s.endswith("@@") for s in symbols):
        return {"joins_next": np.array([s.endswith("@@") for s in symbols]), "starts_word": None}
    if any(s.startswith("\u2581") for s in symbols):
        return {"joins_next": None, "starts_word": np.array([s.startswith("\u2581") for s in symbols])}
    return {"joins_next": None, "starts_word": None}


def split_words(
    tokens: np.ndarray, joins_next: Optional[np.ndarray], starts_word: Optional[np.ndarray]
) -> List[np.ndarray]:
    """Token ids ``(T,)`` → list of words, each the ids of its subword units."""
    if len(tokens) == 0:
        return []
    if joins_next is not None:
        starts = np.concatenate([[True], ~joins_next[tokens[:-1]]])
    elif starts_word is not None:
        starts = starts_word[tokens].copy()
        starts[0] = True
    else:
        starts = np.ones(len(tokens), dtype=bool)
    return np.split(tokens, np.flatnonzero(starts)[1:])


class ReviewClassificationDataset(FairseqDataset):
    """``<s> review </s>`` → label, with truncation, padding side and on-the-fly augmentation."""

    def __init__(
        self,
        reviews,
        labels: torch.Tensor,
        dictionary: Dictionary,
        max_positions: int,
        truncation: str,
        left_pad: bool,
        deletion: float = 0.0,
        swap: float = 0.0,
        seed: int = 1,
        pad_to_length: int = 0,
    ):
        self.reviews, self.labels, self.dictionary = reviews, labels, dictionary
        self.pad = dictionary.pad()
        self.max_positions, self.truncation, self.left_pad = max_positions, truncation, left_pad
        self.deletion, self.swap, self.seed = deletion, swap, seed
        self.pad_to_length = pad_to_length or None  # None: pad to the batch's longest review
        self.boundaries = word_boundaries(dictionary)
        self.epoch = 1
        # reviews.sizes count the review and its </s>; +1 for <s>; the truncated length is what batches hold
        self.sizes = np.minimum(np.asarray(reviews.sizes) + 1, max_positions)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def can_reuse_epoch_itr_across_epochs(self) -> bool:
        return True  # batches depend on sizes only; augmentation happens per item, per epoch, in __getitem__

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        tokens = self.reviews[index][:-1]  # (T,) without </s>
        if self.deletion > 0 or self.swap > 0:
            rng = np.random.default_rng([self.seed, self.epoch, index])  # deterministic per (seed, epoch, review)
            words = split_words(tokens.numpy(), **self.boundaries)
            words = augment(words, self.deletion, self.swap, rng)
            tokens = torch.from_numpy(np.concatenate(words)).to(torch.long)
        source = frame(tokens, self.dictionary, self.max_positions, self.truncation)  # (≤ max_positions,)
        return {"id": index, "source": source, "target": self.labels[index]}

    def collater(self, samples: List[dict]) -> dict:
        if not samples:
            return {}
        src_tokens = data_utils.collate_tokens(
            [s["source"] for s in samples], self.pad, left_pad=self.left_pad, pad_to_length=self.pad_to_length
        )  # (B, T)
        lengths = torch.tensor([s["source"].numel() for s in samples])
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": {"src_tokens": src_tokens, "src_lengths": lengths},
            "target": torch.stack([s["target"] for s in samples]),  # (B,) class indices
        }

    def num_tokens(self, index: int) -> int:
        return int(self.sizes[index])

    def size(self, index: int) -> int:
        return int(self.sizes[index])

    def ordered_indices(self) -> np.ndarray:
        """Random order (seeded by fairseq), then stably by length so batches hold reviews of similar length."""
        order = np.random.permutation(len(self))
        return order[np.argsort(self.sizes[order], kind="mergesort")]
