"""FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (§3.3). Plain PyTorch."""

import torch.nn.functional as F
from torch import Tensor, nn


class PositionwiseFeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (§3.3), applied to each position alike; d_model → d_ff → d_model.

    Differs from the paper: optional dropout after the ReLU (fairseq's ``--activation-dropout``; 0 in the paper).
    """

    def __init__(self, d_model: int, d_ff: int, activation_dropout: float = 0.0):
        super().__init__()
        self.W_1 = nn.Linear(d_model, d_ff)
        self.W_2 = nn.Linear(d_ff, d_model)
        self.activation_dropout = activation_dropout
        # initialisation: torch's nn.Linear default, as in fairseq's Transformer (the paper gives none)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, d_model)`` → ``(B, T, d_model)``."""
        hidden = F.relu(self.W_1(x))  # (B, T, d_ff)
        hidden = F.dropout(hidden, p=self.activation_dropout, training=self.training)
        return self.W_2(hidden)
