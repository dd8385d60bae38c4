"""Encoder and decoder layers (§3.1): self-attention, cross-attention and FFN, each in a post-norm residual.

Plain PyTorch, batch-first ``(B, T, d_model)``. A decoder layer takes an explicit ``cache`` dict for
incremental decoding: ``{"self_attn": {...}, "cross_attn": {...}}``, filled by the attention modules.
With ``pre_norm`` each residual is x + Dropout(Sublayer(LayerNorm(x))) instead (:class:`~.residual.PreNormResidual`).
A layer is built from one side's :class:`~.sizes.SideSizes` (d_model, h, d_k, d_v, d_ff, P_drop, pre_norm).
"""

from typing import Dict, Optional, Tuple

from torch import Tensor, nn

from .feed_forward import PositionwiseFeedForward
from .multi_head_attention import MultiHeadAttention
from .residual import make_residual
from .sizes import SideSizes


class EncoderLayer(nn.Module):
    """x ← LayerNorm(x + Dropout(SelfAttn(x))); x ← LayerNorm(x + Dropout(FFN(x))) (§3.1, encoder).

    With ``pre_norm``: x ← x + Dropout(SelfAttn(LayerNorm(x))); x ← x + Dropout(FFN(LayerNorm(x))).
    """

    def __init__(self, sizes: SideSizes):
        super().__init__()
        self.self_attn = MultiHeadAttention(sizes.d_model, sizes.h, sizes.d_k, sizes.d_v, sizes.attention_dropout)
        self.self_attn_residual = make_residual(sizes.d_model, sizes.P_drop, sizes.pre_norm)
        self.ffn = PositionwiseFeedForward(sizes.d_model, sizes.d_ff, sizes.activation_dropout)
        self.ffn_residual = make_residual(sizes.d_model, sizes.P_drop, sizes.pre_norm)

    def forward(
        self, x: Tensor, padding_mask: Optional[Tensor] = None, need_weights: bool = False
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """x ``(B, S, d_model)``, padding_mask ``(B, S)`` (True = pad) → x ``(B, S, d_model)`` and the
        self-attention weights ``(B, h, S, S)`` (None unless ``need_weights``)."""
        y = self.self_attn_residual.sublayer_input(x)  # (B, S, d_model): x, or LayerNorm(x) with pre_norm
        attn_out, weights = self.self_attn(y, y, key_padding_mask=padding_mask, need_weights=need_weights)
        x = self.self_attn_residual(x, attn_out)
        x = self.ffn_residual(x, self.ffn(self.ffn_residual.sublayer_input(x)))
        return x, weights


class DecoderLayer(nn.Module):
    """Masked self-attention, encoder-decoder attention, FFN, each as LayerNorm(x + Dropout(·)) (§3.1, decoder).

    With ``pre_norm`` each is x + Dropout(·) of the normalised x; the memory is used as the encoder gives it.
    """

    def __init__(self, sizes: SideSizes):
        super().__init__()
        self.self_attn = MultiHeadAttention(sizes.d_model, sizes.h, sizes.d_k, sizes.d_v, sizes.attention_dropout)
        self.self_attn_residual = make_residual(sizes.d_model, sizes.P_drop, sizes.pre_norm)
        self.cross_attn = MultiHeadAttention(sizes.d_model, sizes.h, sizes.d_k, sizes.d_v, sizes.attention_dropout)
        self.cross_attn_residual = make_residual(sizes.d_model, sizes.P_drop, sizes.pre_norm)
        self.ffn = PositionwiseFeedForward(sizes.d_model, sizes.d_ff, sizes.activation_dropout)
        self.ffn_residual = make_residual(sizes.d_model, sizes.P_drop, sizes.pre_norm)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        memory_padding_mask: Optional[Tensor] = None,
        cache: Optional[Dict[str, Dict[str, Tensor]]] = None,
        need_self_weights: bool = False,
        need_cross_weights: bool = False,
        causal: bool = True,
        self_padding_mask: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """x ``(B, T, d_model)``, memory ``(B, S, d_model)`` → x ``(B, T, d_model)``, the self-attention weights
        ``(B, h, T, T')`` and the cross-attention weights ``(B, h, T, S)`` (each None unless asked for).

        Weights are computed (by the plain formula, not the fused kernel) only where asked for.
        With a cache, ``x`` holds only the newest position(s) and earlier keys/values come from the cache.
        ``self_padding_mask`` ``(B, T')`` (True = pad) marks target padding among the self-attention keys, so that
        no real position attends to a pad, whichever side the targets are padded on.
        ``causal=False`` lifts the decoder's mask: every target position sees the whole target. That is not
        the paper's decoder; it exists for Garg et al.'s full-context alignment pass, never for prediction.
        """
        y = self.self_attn_residual.sublayer_input(x)  # (B, T, d_model): x, or LayerNorm(x) with pre_norm
        self_out, self_w = self.self_attn(
            y,
            y,
            key_padding_mask=self_padding_mask,
            causal=causal,
            cache=None if cache is None else cache["self_attn"],
            need_weights=need_self_weights,
        )
        x = self.self_attn_residual(x, self_out)
        cross_out, cross_w = self.cross_attn(
            self.cross_attn_residual.sublayer_input(x),
            memory,
            key_padding_mask=memory_padding_mask,
            cache=None if cache is None else cache["cross_attn"],
            static_kv=True,
            need_weights=need_cross_weights,
        )
        x = self.cross_attn_residual(x, cross_out)
        x = self.ffn_residual(x, self.ffn(self.ffn_residual.sublayer_input(x)))
        return x, self_w, cross_w
