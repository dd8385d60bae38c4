"""Residual sub-layers (§3.1, dropout as in §5.4): the paper's post-norm LayerNorm(x + Dropout(Sublayer(x))), and the
pre-norm x + Dropout(Sublayer(LayerNorm(x))) of Xiong et al. (2020). Plain PyTorch.

Both take the sub-layer's output rather than the sub-layer, so that callers can also keep what the sub-layer returns
besides its output (attention weights, caches): a layer computes ``Sublayer(residual.sublayer_input(x))`` and passes
it to ``residual(x, ·)``. Both keep their norm as ``layer_norm``, one per sub-layer, so the two share parameter names.
"""

import torch.nn.functional as F
from torch import Tensor, nn


class PostNormResidual(nn.Module):
    """LayerNorm(x + Dropout(Sublayer(x))) (§3.1, §5.4): the paper's post-norm; the norm comes after the sum."""

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.layer_norm = nn.LayerNorm(d_model)

    def sublayer_input(self, x: Tensor) -> Tensor:
        """What the sub-layer reads: x itself ``(B, T, d_model)``."""
        return x

    def forward(self, x: Tensor, sublayer_out: Tensor) -> Tensor:
        """x, Sublayer(x): ``(B, T, d_model)`` → ``(B, T, d_model)``."""
        return self.layer_norm(x + F.dropout(sublayer_out, p=self.dropout, training=self.training))


class PreNormResidual(nn.Module):
    """x + Dropout(Sublayer(LayerNorm(x))) (Xiong et al. 2020, §5.4's dropout).

    Departs from §3.1 (LayerNorm(x + Sublayer(x))): the norm moves onto the sub-layer's input, so the residual
    stream is never normalised; a stack of these layers ends with one more LayerNorm (the encoder's, the decoder's).
    """

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.layer_norm = nn.LayerNorm(d_model)

    def sublayer_input(self, x: Tensor) -> Tensor:
        """What the sub-layer reads: LayerNorm(x) ``(B, T, d_model)``."""
        return self.layer_norm(x)

    def forward(self, x: Tensor, sublayer_out: Tensor) -> Tensor:
        """x, Sublayer(LayerNorm(x)): ``(B, T, d_model)`` → ``(B, T, d_model)``."""
        return x + F.dropout(sublayer_out, p=self.dropout, training=self.training)


def make_residual(d_model: int, dropout: float, pre_norm: bool = False) -> nn.Module:
    """The paper's post-norm residual (§3.1), or the pre-norm one with ``pre_norm``."""
    return (PreNormResidual if pre_norm else PostNormResidual)(d_model, dropout)
