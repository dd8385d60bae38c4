"""Label-smoothed cross-entropy (§5.4, ε_ls = 0.1; Szegedy et al. 2016) as a fairseq criterion."""

import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

from fairseq import metrics, utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from omegaconf import II
from torch import Tensor

from ..fairseq_fixes.errors import FlagError


def label_smoothed_nll_loss(
    lprobs: Tensor, target: Tensor, epsilon: float, ignore_index: Optional[int] = None
) -> Tuple[Tensor, Tensor]:
    """H(q, p) with q = (1-ε)·onehot(y) + ε/V (Szegedy et al. 2016, used in §5.4); returns (loss, nll) summed.

    lprobs ``(N, V)`` log-probabilities, target ``(N,)``. Per token:
    loss = (1-ε)·(-log p_y) + (ε/V)·Σ_v(-log p_v); nll = -log p_y. Targets equal to ``ignore_index`` count 0.
    Differs from fairseq's ``label_smoothed_cross_entropy``, which spreads ε over the V-1 wrong classes only.
    """
    nll = -lprobs.gather(dim=-1, index=target.unsqueeze(-1)).squeeze(-1)  # (N,)
    smooth = -lprobs.sum(dim=-1)  # (N,)
    if ignore_index is not None:
        keep = target.ne(ignore_index)
        nll = nll * keep
        smooth = smooth * keep
    nll_sum = nll.sum()
    loss = (1.0 - epsilon) * nll_sum + (epsilon / lprobs.size(-1)) * smooth.sum()
    return loss, nll_sum


@dataclass
class VanillaLabelSmoothedCrossEntropyConfig(FairseqDataclass):
    label_smoothing: float = field(
        default=0.1, metadata={"help": "ε_ls, the label-smoothing mass (§5.4: 0.1); 0 = plain cross-entropy"}
    )
    report_accuracy: bool = field(default=False, metadata={"help": "also log token accuracy"})
    sentence_avg: bool = II("optimization.sentence_avg")


@register_criterion("vanilla_label_smoothed_cross_entropy", dataclass=VanillaLabelSmoothedCrossEntropyConfig)
class VanillaLabelSmoothedCrossEntropyCriterion(FairseqCriterion):
    """Label-smoothed cross-entropy over target tokens, padding ignored; logs loss, nll_loss and ppl in bits, as
    fairseq does."""

    def __init__(self, task, label_smoothing: float, sentence_avg: bool, report_accuracy: bool = False):
        super().__init__(task)
        if not 0.0 <= label_smoothing < 1.0:
            raise FlagError(f"--label-smoothing must be in [0, 1), got {label_smoothing}")
        self.eps = label_smoothing
        self.sentence_avg = sentence_avg
        self.report_accuracy = report_accuracy

    def forward(self, model, sample, reduce: bool = True):
        net_output = model(**sample["net_input"])
        return self.compute_loss(model, net_output, sample)

    def compute_loss(self, model, net_output, sample):
        """(loss, sample_size, logging_output) of one batch's model output."""
        lprobs = model.get_normalized_probs(net_output, log_probs=True)  # (B, T, V)
        lprobs = lprobs.view(-1, lprobs.size(-1))  # (B·T, V)
        target = model.get_targets(sample, net_output).view(-1)  # (B·T,)
        loss, nll_loss = label_smoothed_nll_loss(lprobs, target, self.eps, ignore_index=self.padding_idx)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
        }
        if self.report_accuracy:
            keep = target.ne(self.padding_idx)
            logging_output["n_correct"] = utils.item(lprobs.argmax(-1).eq(target).masked_select(keep).sum())
            logging_output["total"] = utils.item(keep.sum())
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        loss_sum = sum(log.get("loss", 0) for log in logging_outputs)
        nll_loss_sum = sum(log.get("nll_loss", 0) for log in logging_outputs)
        ntokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss_sum / sample_size / math.log(2), sample_size, round=3)
        metrics.log_scalar("nll_loss", nll_loss_sum / ntokens / math.log(2), ntokens, round=3)
        metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["nll_loss"].avg))
        total = sum(log.get("total", 0) for log in logging_outputs)
        if total > 0:
            metrics.log_scalar("total", total)
            metrics.log_scalar("n_correct", sum(log.get("n_correct", 0) for log in logging_outputs))
            metrics.log_derived(
                "accuracy", lambda meters: round(meters["n_correct"].sum * 100.0 / meters["total"].sum, 3)
            )

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
