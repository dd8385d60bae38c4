"""fairseq glue for a sentence classifier on the paper's encoder (§3.1): encoder → pooling → dropout → linear.

The encoder is :class:`~fairseq_vanilla.models.encoder.VanillaTransformerEncoder`, the very class the translation
model uses (same modules, no copy). Pooling reads the ``<s>`` the ``imdb_classification`` task puts
first ("first", BERT's choice), or averages over the non-padding positions ("mean"). Not in the paper, which
has no classifier.
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum
from fairseq.models import BaseFairseqModel, register_model
from torch import Tensor, nn

from ..fairseq_fixes.errors import FlagError, check_fraction
from ..modules import TokenEmbedding
from .config import VanillaEncoderConfig, check_config, register_presets, side_sizes
from .encoder import VanillaTransformerEncoder

logger = logging.getLogger(__name__)

POOLING_CHOICES = ChoiceEnum(["first", "mean"])


@dataclass
class VanillaTransformerClassifierConfig(VanillaEncoderConfig):
    """Flags of ``vanilla_transformer_classifier``: the encoder's, plus pooling, head dropout and word vectors."""

    pooling: POOLING_CHOICES = field(
        default="first",
        metadata={
            "help": "sentence vector: the first token's (<s>) encoder output, or the mean over non-padding tokens"
        },
    )
    pooler_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the pooled encoder output, before the classification layer"}
    )
    encoder_embed_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "pretrained word vectors (text format: optional 'count dim' header, then 'word v1 … v_d_model' a "
            "line) for the input embedding"
        },
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={"help": "keep the input embedding fixed during training (with --encoder-embed-path: Trans-1)"},
    )


def load_word_vectors(path: str, dictionary, embedding: TokenEmbedding) -> int:
    """Copy the vectors of ``path`` into the rows of the dictionary's symbols found there; returns how many."""
    d_model = embedding.weight.size(1)
    index = {symbol: i for i, symbol in enumerate(dictionary.symbols)}
    found = 0
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: count and dimension
            if len(parts) != d_model + 1:
                raise ValueError(
                    f"{path}:{lineno}: {len(parts) - 1} numbers after the word, but d_model "
                    f"(--encoder-embed-dim) is {d_model}"
                )
            if parts[0] in index:
                try:
                    vector = torch.tensor([float(x) for x in parts[1:]])
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: not a vector of numbers") from None
                with torch.no_grad():
                    embedding.weight[index[parts[0]]] = vector
                found += 1
    return found


@register_model("vanilla_transformer_classifier", dataclass=VanillaTransformerClassifierConfig)
class VanillaTransformerClassifier(BaseFairseqModel):
    """Encoder (§3.1) + pooling + dropout + a linear layer to the classes; returns logits ``(B, classes)``."""

    def __init__(self, encoder: VanillaTransformerEncoder, num_classes: int, pooling: str, pooler_dropout: float):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.pooler_dropout = pooler_dropout
        self.classifier = nn.Linear(encoder.embed_tokens.weight.size(1), num_classes)

    @classmethod
    def build_model(cls, cfg, task):
        check_config(cfg, sides=("encoder",))
        check_fraction("pooler_dropout", cfg.pooler_dropout)
        if not hasattr(task, "num_classes"):
            raise FlagError("vanilla_transformer_classifier needs a classification task (--task text_classification)")
        dictionary = task.source_dictionary
        embed = TokenEmbedding(len(dictionary), cfg.encoder_embed_dim, dictionary.pad())
        if cfg.encoder_embed_path:
            found = load_word_vectors(cfg.encoder_embed_path, dictionary, embed)
            logger.info(f"{cfg.encoder_embed_path}: vectors for {found} of {len(dictionary)} dictionary entries")
        if cfg.freeze_embeddings:
            embed.embedding.weight.requires_grad_(False)
        encoder = VanillaTransformerEncoder(
            dictionary, embed, side_sizes(cfg, "encoder"), cfg.positional_encoding, cfg.max_source_positions
        )
        return cls(encoder, task.num_classes, cfg.pooling, cfg.pooler_dropout)

    def pool(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        """Encoder output ``(B, T, d_model)`` → sentence vector ``(B, d_model)``."""
        if self.pooling == "mean":
            keep = (~padding_mask).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
            return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        first = (~padding_mask).to(torch.int8).argmax(dim=1)  # (B,): the <s>, after any left padding
        return x[torch.arange(x.size(0), device=x.device), first]

    def forward(
        self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None, return_all_attention: bool = False, **unused
    ) -> Union[Tensor, Tuple[Tensor, List[Tensor]]]:
        """src_tokens ``(B, T)`` → class logits ``(B, classes)``; with ``return_all_attention``, the pair (logits, every
        encoder layer's self-attention weights, N × ``(B, h, T, T)``), computed by the plain formula, not the fused
        kernel."""
        out = self.encoder(src_tokens, src_lengths, return_all_attention=return_all_attention)
        sentence = self.pool(out["encoder_out"][0], out["encoder_padding_mask"][0])  # (B, d_model)
        sentence = F.dropout(sentence, p=self.pooler_dropout, training=self.training)
        logits = self.classifier(sentence)  # (B, classes)
        return (logits, out["encoder_attention"]) if return_all_attention else logits

    def max_positions(self) -> int:
        return self.encoder.max_positions()


# Presets: the paper's base encoder (N=6, h=8: Trans-Base in examples/imdb/README.md) and a CPU-sized one.
CLASSIFIER_PRESETS: Dict[str, Dict] = {
    "vanilla_transformer_classifier": {},
    "vanilla_transformer_classifier_tiny": dict(
        encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=4, encoder_layers=2, pooling="mean"
    ),
}
register_presets("vanilla_transformer_classifier", CLASSIFIER_PRESETS, VanillaTransformerClassifierConfig)
