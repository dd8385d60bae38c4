"""L = L_ls + λ·L_align, L_align = −Σ_(i,j)∈A w_j · log α_(j,i) (Garg et al. 2019, §4.1), as a fairseq criterion.

α is the supervised cross-attention (``vanilla_transformer_align``), A the training alignment links (source word i,
target word j) that ``fairseq-preprocess --align-suffix`` binarised and the translation task loads with
``--load-alignments``; w_j = 1 / (number of links of target word j), so that every aligned target word carries
weight 1, as in fairseq's ``label_smoothed_cross_entropy_with_alignment``.
"""

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq import metrics, utils
from fairseq.criterions import register_criterion
from torch import Tensor

from ..fairseq_fixes.errors import FlagError
from .label_smoothed_cross_entropy import (
    VanillaLabelSmoothedCrossEntropyConfig,
    VanillaLabelSmoothedCrossEntropyCriterion,
)


def alignment_nll_loss(attn: Tensor, alignments: Tensor, weights: Tensor) -> Tensor:
    """−Σ_k w_k · log α[t_k, s_k] (Garg et al. §4.1), summed over the links.

    attn ``(N, S)``: one attention distribution over source positions per target row (N = B·T);
    alignments ``(L, 2)``: per link, column 0 = source position s_k, column 1 = target row t_k (fairseq's layout);
    weights ``(L,)``. A link onto a zero-probability position would give +inf; the probability is floored at the
    dtype's tiny value so that one bad link cannot turn the batch's loss into inf.
    """
    probs = attn[alignments[:, 1], alignments[:, 0]].float()  # (L,)
    return -(probs.clamp_min(torch.finfo(probs.dtype).tiny).log() * weights.float()).sum()


@dataclass
class VanillaLabelSmoothedCrossEntropyWithAlignmentConfig(VanillaLabelSmoothedCrossEntropyConfig):
    alignment_lambda: float = field(
        default=0.05, metadata={"help": "λ, the weight of the alignment loss (Garg et al.: 0.05)"}
    )


@register_criterion(
    "vanilla_label_smoothed_cross_entropy_with_alignment", dataclass=VanillaLabelSmoothedCrossEntropyWithAlignmentConfig
)
class VanillaLabelSmoothedCrossEntropyWithAlignmentCriterion(VanillaLabelSmoothedCrossEntropyCriterion):
    """Label-smoothed cross-entropy plus λ times the alignment NLL of the model's ``extra["attn"][0]``."""

    def __init__(
        self,
        task,
        label_smoothing: float,
        sentence_avg: bool,
        alignment_lambda: float,
        report_accuracy: bool = False,
        chunked_loss: str = "auto",
        loss_chunk_tokens: int = 0,
    ):
        super().__init__(task, label_smoothing, sentence_avg, report_accuracy, chunked_loss, loss_chunk_tokens)
        if alignment_lambda < 0:
            raise FlagError(f"--alignment-lambda must be ≥ 0, got {alignment_lambda}")
        self.alignment_lambda = alignment_lambda

    def forward(self, model, sample, reduce: bool = True):
        net_output, loss, sample_size, logging_output = self.model_loss(model, sample)
        align_loss = self.compute_alignment_loss(sample, net_output)
        if align_loss is not None:
            logging_output["alignment_loss"] = align_loss.data
            loss = loss + self.alignment_lambda * align_loss
            logging_output["loss"] = loss.data
        return loss, sample_size, logging_output

    def compute_alignment_loss(self, sample, net_output) -> Optional[Tensor]:
        """None when the batch has no alignments (e.g. a split binarised without them)."""
        alignments = sample.get("alignments")
        if alignments is None or len(alignments) == 0:
            return None
        attn = net_output[1]["attn"][0]
        if attn is None:
            raise ValueError("the model returned no alignment attention; train --arch vanilla_transformer_align")
        bsz, tgt_len, src_len = attn.shape  # (B, T, S)
        return alignment_nll_loss(attn.reshape(bsz * tgt_len, src_len), alignments, sample["align_weights"])

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        align_sum = sum(log.get("alignment_loss", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        if any("alignment_loss" in log for log in logging_outputs):
            metrics.log_scalar(
                "alignment_loss", utils.item(align_sum) / sample_size / math.log(2), sample_size, round=3
            )
