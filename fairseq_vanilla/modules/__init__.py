"""The paper's building blocks in plain PyTorch (no fairseq import): one module per concept."""
from .attention import attention, build_mask, scaled_dot_product_attention
from .embedding import TokenEmbedding
from .feed_forward import PositionwiseFeedForward
from .layers import DecoderLayer, EncoderLayer
from .multi_head_attention import MultiHeadAttention
from .positional_encoding import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    positions_from_padding,
    sinusoid_table,
)
from .residual import PostNormResidual

__all__ = [
    "attention", "build_mask", "scaled_dot_product_attention", "TokenEmbedding", "PositionwiseFeedForward",
    "DecoderLayer", "EncoderLayer", "MultiHeadAttention", "LearnedPositionalEncoding",
    "SinusoidalPositionalEncoding", "positions_from_padding", "sinusoid_table", "PostNormResidual",
]
