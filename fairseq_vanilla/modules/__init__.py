"""The paper's building blocks in plain PyTorch (no fairseq import): one module per concept."""

from .attention import attention, build_mask, fused_attention, fused_kernel_pays, reference_attention
from .embedding import InputEmbedding, TokenEmbedding
from .feed_forward import PositionwiseFeedForward
from .layers import DecoderLayer, EncoderLayer
from .multi_head_attention import MultiHeadAttention
from .positional_encoding import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    make_positional_encoding,
    positions_from_padding,
    sinusoid_table,
)
from .residual import PostNormResidual, PreNormResidual, make_residual
from .sizes import BASE, SideSizes, head_dims

__all__ = [
    "attention",
    "fused_attention",
    "fused_kernel_pays",
    "build_mask",
    "reference_attention",
    "InputEmbedding",
    "TokenEmbedding",
    "PositionwiseFeedForward",
    "DecoderLayer",
    "EncoderLayer",
    "MultiHeadAttention",
    "LearnedPositionalEncoding",
    "SinusoidalPositionalEncoding",
    "make_positional_encoding",
    "positions_from_padding",
    "sinusoid_table",
    "PostNormResidual",
    "PreNormResidual",
    "make_residual",
    "BASE",
    "SideSizes",
    "head_dims",
]
