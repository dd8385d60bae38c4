"""Post-norm residual sub-layer: LayerNorm(x + Dropout(Sublayer(x))) (§3.1, dropout as in §5.4). Plain PyTorch."""

import torch.nn.functional as F
from torch import Tensor, nn


class PostNormResidual(nn.Module):
    """LayerNorm(x + Dropout(Sublayer(x))) (§3.1, §5.4): the paper's post-norm; the norm comes after the sum.

    Takes the sub-layer's output rather than the sub-layer, so that callers can also keep what the
    sub-layer returns besides its output (attention weights, caches).
    """

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, sublayer_out: Tensor) -> Tensor:
        """x, Sublayer(x): ``(B, T, d_model)`` → ``(B, T, d_model)``."""
        return self.layer_norm(x + F.dropout(sublayer_out, p=self.dropout, training=self.training))
