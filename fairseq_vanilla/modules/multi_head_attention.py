"""MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V) (§3.2.2).

Plain PyTorch. Activations are batch-first ``(B, T, d_model)``; fairseq's own Transformer passes
``T×B×C`` between its modules, this package keeps batch-first everywhere so that no transpose is
needed before the fused attention kernel.
"""

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .attention import attention


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, …, head_h) W^O (§3.2.2); d_k and d_v as given (the paper's d_model / h is
    worked out with the other sizes, ``sizes.py:head_dims``).

    The h per-head projections W_i^Q (d_model×d_k) are stored side by side as one d_model → h·d_k map
    ``W_Q`` (likewise ``W_K``; ``W_V`` maps d_model → h·d_v), which is the same linear map; ``W_O`` maps
    h·d_v → d_model. Table 3 row B varies d_k alone (d_v stays 64).

    Incremental decoding: ``cache`` is a plain dict owned by the caller. For self-attention the new
    keys/values are appended to ``cache["k"]``/``cache["v"]``; for cross-attention (``static_kv``) they are
    computed from the encoder output once and reused at every later step.
    """

    def __init__(self, d_model: int, h: int, d_k: int, d_v: int, attention_dropout: float = 0.0):
        super().__init__()
        self.d_model, self.h, self.d_k, self.d_v = d_model, h, d_k, d_v
        self.attention_dropout = attention_dropout
        self.W_Q = nn.Linear(d_model, h * self.d_k)
        self.W_K = nn.Linear(d_model, h * self.d_k)
        self.W_V = nn.Linear(d_model, h * self.d_v)
        self.W_O = nn.Linear(h * self.d_v, d_model)
        self.fast = True  # use torch's fused SDPA kernel when weights are not asked for
        # The paper gives no initialisation; we use fairseq's (Xavier, gain 1/√2 for the input projections).
        for w in (self.W_Q, self.W_K, self.W_V):
            nn.init.xavier_uniform_(w.weight, gain=2**-0.5)
        nn.init.xavier_uniform_(self.W_O.weight)
        nn.init.zeros_(self.W_O.bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        b, t, hd = x.shape
        return x.view(b, t, self.h, hd // self.h).transpose(1, 2)  # (B, h, T, d_k) or (B, h, T, d_v)

    def forward(
        self,
        query: Tensor,
        key_value: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        causal: bool = False,
        cache: Optional[Dict[str, Tensor]] = None,
        static_kv: bool = False,
        need_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """query ``(B, T_q, d_model)``, key_value ``(B, T_k, d_model)`` → output ``(B, T_q, d_model)``, weights
        ``(B, h, T_q, T_k)|None``."""
        b, tq, _ = query.shape
        q = self._split_heads(self.W_Q(query))  # (B, h, T_q, d_k)
        if cache is not None and static_kv and "k" in cache:
            k, v = cache["k"], cache["v"]  # (B, h, S, d_k), (B, h, S, d_v): computed at the first step
        else:
            k = self._split_heads(self.W_K(key_value))  # (B, h, T_k, d_k)
            v = self._split_heads(self.W_V(key_value))  # (B, h, T_k, d_v)
            if cache is not None:
                if not static_kv and "k" in cache:
                    k = torch.cat([cache["k"], k], dim=2)  # (B, h, T_prev + T_k, d_k)
                    v = torch.cat([cache["v"], v], dim=2)  # (B, h, T_prev + T_k, d_v)
                cache["k"], cache["v"] = k, v
        out, weights = attention(
            q,
            k,
            v,
            key_padding_mask=key_padding_mask,
            causal=causal,
            dropout_p=self.attention_dropout,
            training=self.training,
            need_weights=need_weights,
            fast=self.fast,
        )
        out = out.transpose(1, 2).reshape(b, tq, self.h * self.d_v)  # (B, T_q, h·d_v)
        return self.W_O(out), weights
