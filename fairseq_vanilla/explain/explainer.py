"""Which words decided a review's class: per-token scores of a trained classifier, regrouped into words.

The math is :mod:`fairseq_vanilla.evaluation.attribution`; this module wires it to a
:class:`~fairseq_vanilla.models.vanilla_transformer_classifier.VanillaTransformerClassifier` and to raw text
(:class:`~fairseq_vanilla.inference.hub.ReviewClassifier`'s preprocessing and truncation). Where the data is segmented
(subword-nmt BPE or sentencepiece), a word's score is the **sum** of its pieces' scores. ``<s>`` and ``</s>``
are scored by the methods but are not words of the review, so they are left out of the ranking.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from ..evaluation.attribution import (
    attention_scores,
    gradient_scores,
    integrated_gradients_scores,
    rollout_scores,
)

METHODS = ("attention", "rollout", "gradient", "integrated-gradients")


def content_mask(tokens: Tensor, dictionary) -> Tensor:
    """``(B, T)`` → True where a token is part of the review (not padding, ``<s>`` or ``</s>``)."""
    return tokens.ne(dictionary.pad()) & tokens.ne(dictionary.bos()) & tokens.ne(dictionary.eos())


@torch.no_grad()
def probabilities(model, tokens: Tensor) -> Tensor:
    """Class probabilities ``(B, C)`` of a batch of framed, padded reviews ``(B, T)``."""
    return torch.softmax(model(tokens).float(), dim=-1)


def token_scores(model, tokens: Tensor, method: str, target: Tensor, dictionary, steps: int = 50) -> Tensor:
    """One score per position ``(B, T)`` of ``method`` for class ``target`` ``(B,)``; padding scores 0.

    Integrated gradients start from a baseline in which every token but ``<s>``, ``</s>`` and padding is the
    padding token (whose embedding is zero)."""
    padding_mask = tokens.eq(dictionary.pad())  # (B, T)
    if method in ("attention", "rollout"):
        with torch.no_grad():
            _, attentions = model(tokens, return_all_attention=True)  # N × (B, h, T, T)
        read = attention_scores if method == "attention" else rollout_scores
        return read(attentions, padding_mask, model.pooling)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    embedding = model.encoder.embed_tokens
    frozen = not embedding.weight.requires_grad  # --freeze-embeddings: the gradient must still reach them
    embedding.weight.requires_grad_(True)
    try:
        if method == "gradient":
            scores = gradient_scores(model, embedding, tokens, target)
        else:
            baseline = tokens.masked_fill(content_mask(tokens, dictionary), dictionary.pad())  # (B, T)
            scores = integrated_gradients_scores(model, embedding, tokens, baseline, target, steps)
    finally:
        embedding.weight.requires_grad_(not frozen)
    return scores.masked_fill(padding_mask, 0.0)


def group_pieces(pieces: Sequence[str], positions: Sequence[int], sentencepiece: bool) -> List[Tuple[str, List[int]]]:
    """Segmented pieces → words: ``(word, indices into pieces)``. subword-nmt marks a piece that continues into the
    next with ``@@``; sentencepiece marks a piece that starts a word with ``▁``. ``positions``: each piece's index in
    the untruncated review, so that a word cut by truncation does not join the piece after the cut."""
    words: List[Tuple[str, List[int]]] = []
    for i, piece in enumerate(pieces):
        if sentencepiece:
            starts = piece.startswith("\u2581") or not words
        else:
            starts = not words or not pieces[i - 1].endswith("@@")
        if i > 0 and positions[i] != positions[i - 1] + 1:
            starts = True
        if starts:
            words.append(("", []))
        text, indices = words[-1]
        words[-1] = (text + (piece.lstrip("\u2581") if sentencepiece else piece.removesuffix("@@")), indices + [i])
    return [(text, indices) for text, indices in words if text]


@dataclass
class Explanation:
    """A review, its prediction and one score per word and method (the words as the model's tokeniser wrote them)."""

    review: str
    label: str
    probability: float
    words: List[str]
    scores: Dict[str, List[float]]

    def ranked(self, method: str) -> List[Tuple[str, float]]:
        """(word, score) pairs, the most important first (ties: in reading order)."""
        return sorted(zip(self.words, self.scores[method]), key=lambda pair: -pair[1])


class ReviewExplainer:
    """A :class:`~fairseq_vanilla.inference.hub.ReviewClassifier` and the attribution methods, raw review in, words
    out."""

    def __init__(self, classifier, data: str, steps: int = 50):
        if not hasattr(classifier.model, "pooling"):
            raise ValueError(f"{type(classifier.model).__name__} is not a vanilla_transformer_classifier")
        from ..inference.hub import Preprocessing

        self.classifier, self.steps = classifier, steps
        self.sentencepiece = Preprocessing.from_folder(data).sentencepiece

    @classmethod
    def from_pretrained(cls, checkpoint: str, data: str, steps: int = 50) -> "ReviewExplainer":
        from ..inference.hub import ReviewClassifier

        return cls(ReviewClassifier.from_pretrained(checkpoint, data), data, steps)

    def pieces(self, text: str) -> Tuple[List[str], List[int]]:
        """The review's pieces as the model reads them between ``<s>`` and ``</s>``, and their untruncated indices."""
        from ..tasks.review_dataset import truncate
        from ..text.imdb import clean_review

        pieces = self.classifier.preprocess(clean_review(text)).split()
        cfg = self.classifier.task.cfg
        kept = truncate(torch.arange(len(pieces)), cfg.max_positions - 2, cfg.truncation).tolist()
        return [pieces[i] for i in kept], kept

    def explain(self, text: str, methods: Sequence[str] = METHODS) -> Explanation:
        """Prediction and per-word scores of ``methods`` for one raw review."""
        from ..text.imdb import clean_review

        if not clean_review(text):
            raise ValueError("the review is empty")
        model, dictionary = self.classifier.model, self.classifier.task.source_dictionary
        tokens = self.classifier.encode(text)[None]  # (1, T): <s> pieces </s>
        probs = probabilities(model, tokens)[0]  # (C,)
        best = int(probs.argmax())
        pieces, positions = self.pieces(text)
        if len(pieces) != tokens.size(1) - 2:
            raise AssertionError(f"{len(pieces)} pieces but {tokens.size(1) - 2} tokens")
        words = group_pieces(pieces, positions, self.sentencepiece)
        scores = {}
        for method in methods:
            per_token = token_scores(model, tokens, method, torch.tensor([best]), dictionary, self.steps)[0, 1:-1]
            scores[method] = [float(per_token[indices].sum()) for _, indices in words]  # a word: its pieces' sum
        label = self.classifier.classes[best]
        return Explanation(text, label, float(probs[best]), [w for w, _ in words], scores)
