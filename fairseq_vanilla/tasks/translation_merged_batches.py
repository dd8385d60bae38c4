"""fairseq's ``translation`` with ``--merge-batches K``: each training update is one batch holding the sentences of
K consecutive (shuffled) batches, in one forward pass.

With ``--max-tokens M --update-freq K`` fairseq sums the gradients of K batches of ≤ M tokens, each built from
sentences of similar length. ``--max-tokens M --merge-batches K`` (update-freq 1) trains on exactly those K batches'
sentences per update, concatenated into one padded batch: the same mix of lengths, without the accumulation (one
forward pass, one set of dropout masks, padding to the longest of the K). Only the training split is merged;
validation and generation batch as ``translation`` does.
"""

from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from ..fairseq_fixes.errors import FlagError


def merge_consecutive(batches: Sequence[Sequence[int]], k: int) -> List[np.ndarray]:
    """Batches ``[b₀, b₁, …]`` → ``[b₀ ∪ … ∪ b_{k−1}, b_k ∪ …]`` (index arrays concatenated in order; a short last
    group as fairseq's ``GroupedIterator`` keeps it)."""
    return [
        np.concatenate([np.asarray(b, dtype=np.int64) for b in batches[i : i + k]]) for i in range(0, len(batches), k)
    ]


@dataclass
class TranslationMergedBatchesConfig(TranslationConfig):
    merge_batches: int = field(
        default=1,
        metadata={"help": "train on K consecutive batches merged into one (the sentences of --update-freq K's update, "
                  "one forward pass); 1 = translation's batches"},
    )  # fmt: skip


@register_task("translation_merged_batches", dataclass=TranslationMergedBatchesConfig)
class TranslationMergedBatchesTask(TranslationTask):
    """``translation`` whose training batches are merged K at a time after fairseq's per-epoch shuffle."""

    def __init__(self, cfg: TranslationMergedBatchesConfig, src_dict, tgt_dict):
        if cfg.merge_batches < 1:
            raise FlagError(f"--merge-batches must be at least 1, got {cfg.merge_batches}")
        super().__init__(cfg, src_dict, tgt_dict)

    def get_batch_iterator(self, dataset, *args, **kwargs):
        epoch_iter = super().get_batch_iterator(dataset, *args, **kwargs)
        k = self.cfg.merge_batches
        if k > 1 and dataset is self.datasets.get(self.cfg.train_subset):
            ordered = epoch_iter.ordered_batches  # shuffles with seed + epoch, as for --update-freq

            def merged(epoch, fix_batches_to_gpus, shuffle):
                return merge_consecutive(ordered(epoch, fix_batches_to_gpus, shuffle), k)

            epoch_iter.ordered_batches = merged
        return epoch_iter
