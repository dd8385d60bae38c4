"""Label-smoothed cross-entropy over classes (Szegedy et al. 2016) for sentence classification, with accuracy."""

import math

import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion

from ..fairseq_fixes.errors import check_fraction
from .label_smoothed_cross_entropy import LabelSmoothingConfig, label_smoothed_nll_loss


@register_criterion("vanilla_label_smoothed_classification", dataclass=LabelSmoothingConfig)  # --label-smoothing alone
class VanillaLabelSmoothedClassificationCriterion(FairseqCriterion):
    """H(q, p) per example, q = (1-ε)·onehot + ε/C over C classes; logs loss and nll in bits, accuracy as a fraction
    (correct / examples, over the whole split when validating) and the number of examples seen."""

    def __init__(self, task, label_smoothing: float):
        super().__init__(task)
        self.eps = check_fraction("label_smoothing", label_smoothing)

    def forward(self, model, sample, reduce: bool = True):
        logits = model(**sample["net_input"])  # (B, C)
        lprobs = F.log_softmax(logits.float(), dim=-1)  # (B, C)
        target = sample["target"].view(-1)  # (B,)
        loss, nll_loss = label_smoothed_nll_loss(lprobs, target, self.eps)
        n = target.numel()
        logging_output = {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": n,
            "sample_size": n,
            "ncorrect": int(lprobs.argmax(dim=-1).eq(target).sum()),
        }
        return loss, n, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        n = sum(log.get("nsentences", 0) for log in logging_outputs)
        if n == 0:
            return
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        nll = sum(log.get("nll_loss", 0) for log in logging_outputs)
        correct = sum(log.get("ncorrect", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / n / math.log(2), n, round=4)
        metrics.log_scalar("nll_loss", nll / n / math.log(2), n, round=4)
        metrics.log_scalar("accuracy", correct / n, n, round=4)
        metrics.log_scalar_sum("examples", n)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
