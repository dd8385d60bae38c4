"""fairseq glue for a recurrent sentence classifier: embedding → N-layer LSTM → the last state → dropout → linear.

The recurrent baseline of the users' IMDB Table 1 (their "LSTM-4"), for the ``imdb_classification`` task; the LSTM is
:class:`~fairseq_vanilla.modules.lstm.StackedLSTM` (written out, no ``torch.nn.LSTM``). ``--lstm-readout`` says which
state the linear layer reads:

* ``last-step``: the top layer's state after the final position of the padded batch, every position a step. With
  left padding (pre-padding) that is each review's last token; with right padding (post-padding) it is the state
  after the run of padding that follows a shorter review: what a Keras ``LSTM`` reads from post-padded input.
* ``last-token``: the state after each review's own last token: padded positions are masked (a padded step leaves
  the state unchanged), so the prediction is the same under left, right or no padding.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from torch import Tensor, nn

from ..fairseq_fixes.errors import FlagError, check_fraction
from ..modules.lstm import StackedLSTM
from .config import register_presets

READOUT_CHOICES = ChoiceEnum(["last-step", "last-token"])
NO_LENGTH_LIMIT = 1_000_000  # a recurrent model reads any length; the task's --max-positions is the limit


@dataclass
class VanillaLSTMClassifierConfig(FairseqDataclass):
    """Flags of ``vanilla_lstm_classifier``; the defaults are the ``vanilla_lstm_classifier`` architecture (LSTM-4)."""

    encoder_embed_dim: int = field(default=128, metadata={"help": "size of the word embeddings (the LSTM's input)"})
    encoder_hidden_dim: int = field(default=128, metadata={"help": "H, the size of each LSTM layer's state"})
    encoder_layers: int = field(default=4, metadata={"help": "LSTM layers stacked (4: the users' LSTM-4)"})
    lstm_readout: READOUT_CHOICES = field(
        default="last-token",
        metadata={
            "help": "state read by the classifier: last-step = after the final (possibly padded) position; "
            "last-token = after each review's own last token (padding masked)"
        },
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout on the embeddings and between LSTM layers"})
    pooler_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the state read out, before the classification layer"}
    )


def check_lstm_config(cfg) -> None:
    """Reject impossible flag values with a one-line message that names the flag."""
    for name in ("encoder_embed_dim", "encoder_hidden_dim", "encoder_layers"):
        if getattr(cfg, name) < 1:
            raise FlagError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    for name in ("dropout", "pooler_dropout"):
        check_fraction(name, getattr(cfg, name))
    if cfg.lstm_readout not in ("last-step", "last-token"):
        raise FlagError(f"--lstm-readout must be last-step or last-token, got {cfg.lstm_readout!r}")


@register_model("vanilla_lstm_classifier", dataclass=VanillaLSTMClassifierConfig)
class VanillaLSTMClassifier(BaseFairseqModel):
    """Embedding + N-layer LSTM + the last state (``--lstm-readout``) + dropout + linear; returns logits
    ``(B, classes)``."""

    def __init__(
        self,
        vocab_size: int,
        padding_idx: int,
        num_classes: int,
        embed_dim: int,
        hidden_dim: int,
        layers: int,
        readout: str,
        dropout: float = 0.0,
        pooler_dropout: float = 0.0,
    ):
        super().__init__()
        self.padding_idx, self.readout = padding_idx, readout
        self.dropout, self.pooler_dropout = dropout, pooler_dropout
        self.embed_tokens = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        nn.init.uniform_(self.embed_tokens.weight, -0.1, 0.1)  # as fairseq's lstm and Keras (±0.05) do
        nn.init.zeros_(self.embed_tokens.weight[padding_idx])
        self.lstm = StackedLSTM(embed_dim, hidden_dim, layers, dropout)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    @classmethod
    def build_model(cls, cfg, task):
        check_lstm_config(cfg)
        if not hasattr(task, "num_classes"):
            raise FlagError("--task: vanilla_lstm_classifier needs a classification task (imdb_classification)")
        dictionary = task.source_dictionary
        return cls(
            len(dictionary),
            dictionary.pad(),
            task.num_classes,
            cfg.encoder_embed_dim,
            cfg.encoder_hidden_dim,
            cfg.encoder_layers,
            cfg.lstm_readout,
            cfg.dropout,
            cfg.pooler_dropout,
        )

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None, **unused) -> Tensor:
        """src_tokens ``(B, T)`` → class logits ``(B, classes)``."""
        x = F.dropout(self.embed_tokens(src_tokens), p=self.dropout, training=self.training)  # (B, T, E)
        keep = src_tokens.ne(self.padding_idx) if self.readout == "last-token" else None  # (B, T)
        _, finals = self.lstm(x, keep)
        h_last = finals[-1][0]  # (B, H): the top layer's h after the last step (held over padding when masked)
        h_last = F.dropout(h_last, p=self.pooler_dropout, training=self.training)
        return self.classifier(h_last)  # (B, classes)

    def max_positions(self) -> int:
        return NO_LENGTH_LIMIT


# Architectures: the users' LSTM-4 (the config's defaults) and a small one for tests.
LSTM_PRESETS: Dict[str, Dict] = {
    "vanilla_lstm_classifier": {},
    "vanilla_lstm_classifier_tiny": dict(encoder_embed_dim=32, encoder_hidden_dim=32, encoder_layers=2),
}
register_presets("vanilla_lstm_classifier", LSTM_PRESETS, VanillaLSTMClassifierConfig)
