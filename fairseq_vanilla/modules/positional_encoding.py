"""Positional encodings (§3.5): PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(…).

Plain PyTorch. Positions count real tokens only: with left padding (fairseq pads sources on the left)
the first real token is position 0, so a sentence is encoded the same whatever batch it is in.
The table's size is decided from the sequence length, a number the host already has: reading the largest
position off the tensor (``positions.max()``) would wait for the device at every call.
Kind ``"none"`` departs from §3.5: no position signal at all, so self-attention cannot tell the tokens' order.
"""

from typing import Optional

import torch
from torch import Tensor, nn


def sinusoid_table(n_positions: int, d_model: int) -> Tensor:
    """PE(pos, 2i) = sin(pos/10000^(2i/d_model)), PE(pos, 2i+1) = cos(pos/10000^(2i/d_model)) (§3.5).

    Sines and cosines interleave as in the paper's formula (fairseq instead puts all sines first, then all cosines).
    For odd d_model the last column is a sine.
    """
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),)
    angle = pos / torch.pow(10000.0, two_i / d_model)  # (P, ceil(d/2))
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.float()  # (P, d_model)


def positions_from_padding(tokens: Tensor, padding_idx: int) -> Tensor:
    """Position of each token among the real tokens of its row, 0-based; padding gets 0. ``(B, T)``."""
    not_pad = tokens.ne(padding_idx)
    return ((torch.cumsum(not_pad, dim=1) - 1) * not_pad).long()  # (B, T)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal encoding of §3.5, looked up by position; no parameters (grows on demand)."""

    def __init__(self, d_model: int, max_positions: int = 1024):
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", sinusoid_table(max_positions, d_model), persistent=False)

    def forward(self, positions: Tensor, seq_len: Optional[int] = None) -> Tensor:
        """positions ``(B, T)`` → encodings ``(B, T, d_model)``.

        ``seq_len``: length of the sequences the positions were counted in (positions are below it); default ``T``.
        Incremental decoding passes the whole prefix's length with only its last position."""
        need = positions.size(-1) if seq_len is None else seq_len
        if need > self.table.size(0):
            grown = sinusoid_table(max(need, 2 * self.table.size(0)), self.d_model)
            self.table = grown.to(device=self.table.device, dtype=self.table.dtype)
        return self.table[positions]


class LearnedPositionalEncoding(nn.Module):
    """Learned positional embeddings, the alternative of Table 3 row (E); limited to ``max_positions``."""

    def __init__(self, d_model: int, max_positions: int = 1024):
        super().__init__()
        self.max_positions = max_positions
        self.weight = nn.Parameter(torch.empty(max_positions, d_model))
        nn.init.normal_(self.weight, mean=0.0, std=d_model**-0.5)

    def forward(self, positions: Tensor, seq_len: Optional[int] = None) -> Tensor:
        """positions ``(B, T)`` → embeddings ``(B, T, d_model)``; ``seq_len`` as for the sinusoidal encoding."""
        need = positions.size(-1) if seq_len is None else seq_len
        if need > self.max_positions:
            raise ValueError(
                f"a sequence of {need} tokens exceeds the learned table of {self.max_positions} positions "
                "(raise --max-source-positions/--max-target-positions)"
            )
        return self.weight[positions]


def make_positional_encoding(kind: str, d_model: int, max_positions: int) -> Optional[nn.Module]:
    """``"sinusoidal"`` (§3.5) or ``"learned"`` (Table 3 row E) positional encoding of ``d_model`` dimensions;
    None for ``"none"`` (no positions: an encoder is then permutation-equivariant, not in the paper)."""
    if kind == "none":
        return None
    if kind == "learned":
        return LearnedPositionalEncoding(d_model, max_positions)
    return SinusoidalPositionalEncoding(d_model, max_positions)
