"""Label-smoothed cross-entropy (§5.4, ε_ls = 0.1; Szegedy et al. 2016) as a fairseq criterion."""

import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

from fairseq import metrics, utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II
from torch import Tensor

from ..fairseq_fixes.errors import FlagError, check_fraction
from ..modules.chunked_cross_entropy import chunked_label_smoothed_cross_entropy, default_chunk_tokens

CHUNKED_LOSS_CHOICES = ChoiceEnum(["auto", "on", "off"])


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


def pre_softmax_weight(model) -> Optional[Tensor]:
    """W ``(V, d_model)`` of the decoder's pre-softmax linear map (§3.4) when the decoder's output layer is that map
    alone, logits = features·Wᵀ (the vanilla decoder: the shared embedding or a bias-free projection); None for
    other decoders (fairseq's own, adaptive softmax, a subclass with its own output layer). The decoder says so
    itself (``pre_softmax_weight()``), so the criteria need not know our models."""
    ask = getattr(getattr(model, "decoder", None), "pre_softmax_weight", None)
    return ask() if callable(ask) else None


@dataclass
class LabelSmoothingConfig(FairseqDataclass):
    """ε_ls, declared once for the label-smoothed criteria (translation and classification)."""

    label_smoothing: float = field(
        default=0.1,
        metadata={
            "help": "ε_ls, the label-smoothing mass spread uniformly over the classes (§5.4: 0.1); 0 = plain "
            "cross-entropy"
        },
    )


@dataclass
class VanillaLabelSmoothedCrossEntropyConfig(LabelSmoothingConfig):
    report_accuracy: bool = field(default=False, metadata={"help": "also log token accuracy"})
    chunked_loss: CHUNKED_LOSS_CHOICES = field(
        default="auto",
        metadata={
            "help": "compute the loss from the decoder's last hidden states chunk by chunk, never holding the "
            "tokens × vocabulary logits (same loss and gradients): auto = where the model allows it (the "
            "vanilla_transformer* models), on = required, off = the full log-softmax"
        },
    )
    loss_chunk_tokens: int = field(
        default=0,
        metadata={"help": "target tokens per chunk of --chunked-loss; 0 = as many as keep chunk × V × 4 B ≤ 256 MiB"},
    )
    sentence_avg: bool = II("optimization.sentence_avg")


@register_criterion("vanilla_label_smoothed_cross_entropy", dataclass=VanillaLabelSmoothedCrossEntropyConfig)
class VanillaLabelSmoothedCrossEntropyCriterion(FairseqCriterion):
    """Label-smoothed cross-entropy over target tokens, padding ignored; logs loss, nll_loss and ppl in bits, as
    fairseq does. With ``--chunked-loss`` (auto by default) the loss of a vanilla model is computed from its last
    hidden states and pre-softmax weight, chunk by chunk (:mod:`fairseq_vanilla.modules.chunked_cross_entropy`)."""

    def __init__(
        self,
        task,
        label_smoothing: float,
        sentence_avg: bool,
        report_accuracy: bool = False,
        chunked_loss: str = "auto",
        loss_chunk_tokens: int = 0,
    ):
        super().__init__(task)
        self.eps = check_fraction("label_smoothing", label_smoothing)
        self.sentence_avg = sentence_avg
        self.report_accuracy = report_accuracy
        if str(chunked_loss) not in ("auto", "on", "off"):
            raise FlagError(f"--chunked-loss must be auto, on or off, got {chunked_loss}")
        if loss_chunk_tokens < 0:
            raise FlagError(
                f"--loss-chunk-tokens must be ≥ 0 (0 = chosen from the vocabulary), got {loss_chunk_tokens}"
            )
        self.chunked_loss = str(chunked_loss)
        self.loss_chunk_tokens = loss_chunk_tokens

    def forward(self, model, sample, reduce: bool = True):
        _, loss, sample_size, logging_output = self.model_loss(model, sample)
        return loss, sample_size, logging_output

    def model_loss(self, model, sample):
        """(net_output, loss, sample_size, logging_output): net_output holds the logits, or on the chunked path the
        decoder's last hidden states ``(B, T, d_model)``; its ``extra`` (attention) is the same either way."""
        W = self.chunked_weight(model)
        if W is None:
            net_output = model(**sample["net_input"])
            return (net_output, *self.compute_loss(model, net_output, sample))
        net_output = model(**sample["net_input"], features_only=True)
        return (net_output, *self.compute_chunked_loss(model, net_output, sample, W))

    def chunked_weight(self, model) -> Optional[Tensor]:
        """The pre-softmax weight when the loss is computed chunk by chunk, else None."""
        if self.chunked_loss == "off":
            return None
        W = pre_softmax_weight(model)
        if W is None and self.chunked_loss == "on":
            raise FlagError(
                f"--chunked-loss on needs a vanilla_transformer* model (a decoder whose output layer is features·Wᵀ), "
                f"not {type(getattr(model, 'decoder', model)).__name__}; use --chunked-loss auto or off"
            )
        return W

    def compute_chunked_loss(self, model, net_output, sample, W: Tensor):
        """(loss, sample_size, logging_output) from the decoder's last hidden states and the pre-softmax weight W."""
        target = model.get_targets(sample, net_output)  # (B, T)
        keep = target.ne(self.padding_idx)  # (B, T)
        h = net_output[0][keep]  # (N, d_model): the real target tokens, padding dropped before the projection
        chunk = self.loss_chunk_tokens or default_chunk_tokens(W.size(0))
        loss, nll_loss, n_correct = chunked_label_smoothed_cross_entropy(
            h, W, target[keep], self.eps, chunk, count_correct=self.report_accuracy
        )
        logging_output = self.logging_output(loss, nll_loss, sample)
        if self.report_accuracy:
            logging_output["n_correct"] = utils.item(n_correct)
            logging_output["total"] = h.size(0)
        return loss, logging_output["sample_size"], logging_output

    def logging_output(self, loss: Tensor, nll_loss: Tensor, sample) -> dict:
        return {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample["target"].size(0) if self.sentence_avg else sample["ntokens"],
        }

    def compute_loss(self, model, net_output, sample):
        """(loss, sample_size, logging_output) of one batch's model output."""
        lprobs = model.get_normalized_probs(net_output, log_probs=True)  # (B, T, V)
        lprobs = lprobs.view(-1, lprobs.size(-1))  # (B·T, V)
        target = model.get_targets(sample, net_output).view(-1)  # (B·T,)
        loss, nll_loss = label_smoothed_nll_loss(lprobs, target, self.eps, ignore_index=self.padding_idx)
        logging_output = self.logging_output(loss, nll_loss, sample)
        sample_size = logging_output["sample_size"]
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
