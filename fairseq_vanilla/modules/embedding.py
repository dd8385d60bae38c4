"""Token embeddings multiplied by √d_model (§3.4). Plain PyTorch."""
import math

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
