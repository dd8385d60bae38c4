"""Long short-term memory (Hochreiter & Schmidhuber 1997) with the forget gate (Gers et al. 2000), batch-first.

One step, for input x_t, hidden state h_{t-1} and cell c_{t-1} (⊙ is the elementwise product):

    i_t = σ(W_i x_t + U_i h_{t-1} + b_i)        input gate
    f_t = σ(W_f x_t + U_f h_{t-1} + b_f)        forget gate
    g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)     candidate cell
    o_t = σ(W_o x_t + U_o h_{t-1} + b_o)        output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

The four gates' weights are stacked in the order i, f, g, o (``W = [W_i; W_f; W_g; W_o]``, ``(4H, E)``), as
``torch.nn.LSTM`` stacks them, so that its weights can be copied in to check this code; ``torch.nn.LSTM`` itself is
not used. A ``keep`` mask ``(B, T)`` makes a step where it is False leave (h, c) unchanged: a padded position then
does nothing, whichever side the padding is on, and the state after the last step is the state after each
sequence's own last token. Without a mask every position is a step, padding included (what a Keras ``LSTM``
without ``mask_zero`` computes). Plain PyTorch, no fairseq.
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lstm_cell(gates_x: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor) -> Tuple[Tensor, Tensor]:
    """One LSTM step: ``gates_x`` = W x_t + b ``(B, 4H)`` (computed for all steps at once), h, c ``(B, H)``,
    ``weight_hh`` = U ``(4H, H)`` → (h_t, c_t), each ``(B, H)``."""
    gates = torch.addmm(gates_x, h, weight_hh.t())  # (B, 4H): W x_t + b + U h_{t-1}
    i, f, g, o = gates.chunk(4, dim=1)  # 4 × (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def lstm_layer(
    x: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    keep: Optional[Tensor] = None,
    state: Optional[Tuple[Tensor, Tensor]] = None,
) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    """One LSTM layer over a sequence: x ``(B, T, E)``, W ``(4H, E)``, U ``(4H, H)``, b ``(4H,)``, keep ``(B, T)``
    (True = a real token; None = every position is one), state (h_0, c_0) (default zeros) → outputs h_1 … h_T
    ``(B, T, H)`` and the final (h_T, c_T)."""
    B, T, _ = x.shape
    H = weight_hh.size(1)
    gates_x = F.linear(x, weight_ih, bias)  # (B, T, 4H): the input's part of every step, one matrix product
    h, c = state if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))
    outputs: List[Tensor] = []
    # one view per step through unbind, whose backward is a single stack; indexing gates_x[:, t] instead would
    # make every step's backward fill a zero (B, T, 4H) gradient: O(T²), 85 % of a 400-step training step
    for t, gates_t in enumerate(gates_x.unbind(1)):  # T × (B, 4H)
        h_t, c_t = lstm_cell(gates_t, h, c, weight_hh)  # (B, H) each
        if keep is not None:
            step = keep[:, t].unsqueeze(1)  # (B, 1)
            h_t, c_t = torch.where(step, h_t, h), torch.where(step, c_t, c)  # a padded step changes nothing
        h, c = h_t, c_t
        outputs.append(h)
    return torch.stack(outputs, dim=1), (h, c)  # (B, T, H)


class LSTMLayer(nn.Module):
    """The parameters W, U, b of one layer. Initialised as ``torch.nn.LSTM`` (uniform ±1/√H), except the forget
    gate's bias, 1 (Jozefowicz et al. 2015; Keras's ``unit_forget_bias``): the cell starts out remembering."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_dim, input_dim))  # W: (4H, E)
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_dim, hidden_dim))  # U: (4H, H)
        self.bias = nn.Parameter(torch.empty(4 * hidden_dim))  # b: (4H,)
        bound = 1.0 / math.sqrt(hidden_dim)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            self.bias[hidden_dim : 2 * hidden_dim] = 1.0  # b_f

    def forward(
        self, x: Tensor, keep: Optional[Tensor] = None, state: Optional[Tuple[Tensor, Tensor]] = None
    ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """x ``(B, T, E)`` → outputs ``(B, T, H)``, (h_T, c_T)."""
        return lstm_layer(x, self.weight_ih, self.weight_hh, self.bias, keep, state)


class StackedLSTM(nn.Module):
    """N LSTM layers, each reading the hidden states of the one below, with dropout between layers."""

    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an LSTM needs at least one layer, got {num_layers}")
        dims = [input_dim] + [hidden_dim] * num_layers
        self.layers = nn.ModuleList(LSTMLayer(dims[n], hidden_dim) for n in range(num_layers))
        self.dropout = dropout

    def forward(self, x: Tensor, keep: Optional[Tensor] = None) -> Tuple[Tensor, List[Tuple[Tensor, Tensor]]]:
        """x ``(B, T, E)``, keep ``(B, T)`` → the top layer's outputs ``(B, T, H)`` and each layer's (h_T, c_T)."""
        finals = []
        for n, layer in enumerate(self.layers):
            if n > 0:
                x = F.dropout(x, p=self.dropout, training=self.training)
            x, final = layer(x, keep)  # (B, T, H)
            finals.append(final)
        return x, finals
