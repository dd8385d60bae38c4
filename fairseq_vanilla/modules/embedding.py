"""The stacks' input (§3.4, §3.5, §5.4): token embeddings · √d_model, plus positional encodings, then dropout.

Plain PyTorch.
"""

import math
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn


class TokenEmbedding(nn.Module):
    """Embedding · √d_model (§3.4); initialised N(0, d_model^-½) so the scaled embedding has unit variance."""

    def __init__(self, vocab_size: int, d_model: int, padding_idx: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=d_model**-0.5)
        nn.init.zeros_(self.embedding.weight[padding_idx])
        self.scale = math.sqrt(d_model)
        self.padding_idx = padding_idx

    @property
    def weight(self) -> Tensor:
        return self.embedding.weight

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens ``(B, T)`` → ``(B, T, d_model)``."""
        return self.embedding(tokens) * self.scale


class InputEmbedding(nn.Module):
    """Dropout(Embedding(x) · √d_model + PE(pos)) (§3.4, §3.5, §5.4): what the encoder and decoder stacks read.

    It refers to the token embedding and the positional encoding without owning them: they stay sub-modules of
    the encoder or decoder that passes them in (``embed_tokens``, ``embed_positions``), because one token embedding
    may serve the encoder, the decoder and the pre-softmax projection (§3.4), and because saved parameters are named
    after those attributes (``encoder.embed_tokens.embedding.weight``). This module holds no parameters; its
    ``training`` flag, which switches the dropout, follows its owner's ``train()``/``eval()``.
    ``embed_positions`` None (``--positional-encoding none``) adds no PE: Dropout(Embedding(x) · √d_model).
    """

    def __init__(self, embed_tokens: TokenEmbedding, embed_positions: Optional[nn.Module], dropout: float):
        super().__init__()
        # object.__setattr__: plain references, kept out of this module's sub-modules and state dict
        object.__setattr__(self, "embed_tokens", embed_tokens)
        object.__setattr__(self, "embed_positions", embed_positions)
        self.dropout = dropout

    def forward(self, tokens: Tensor, positions: Tensor, seq_len: Optional[int] = None) -> Tensor:
        """tokens, positions ``(B, T)`` → ``(B, T, d_model)``.

        ``seq_len``: length of the sequences the positions were counted in (default ``T``); incremental decoding
        passes the newest token and its position with the whole prefix's length."""
        x = self.embed_tokens(tokens)  # (B, T, d_model)
        if self.embed_positions is not None:
            x = x + self.embed_positions(positions, seq_len)  # (B, T, d_model)
        return F.dropout(x, p=self.dropout, training=self.training)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}"
