"""The encoder (§3.1) as a fairseq ``FairseqEncoder``: the paper's input embedding and N encoder layers.

Layout: fairseq's own Transformer passes activations as ``T×B×C``; this model keeps them batch-first, ``B×T×C``,
everywhere (also in ``encoder_out["encoder_out"]``), which is what the fused attention kernel wants. Only our own
``reorder_encoder_out`` reads that tensor, so fairseq's beam search is unaffected.
"""

from typing import Any, Dict, List, Optional

from fairseq.models import FairseqEncoder
from torch import Tensor, nn

from ..modules import (
    EncoderLayer,
    InputEmbedding,
    SideSizes,
    TokenEmbedding,
    make_positional_encoding,
    positions_from_padding,
)


class VanillaTransformerEncoder(FairseqEncoder):
    """Encoder (§3.1): Dropout(TokenEmbedding·√d_model + PE), then N encoder layers, all of one :class:`SideSizes`.

    ``sizes.pre_norm``: pre-norm layers and a final LayerNorm over their output (``layer_norm``), as fairseq's
    ``--encoder-normalize-before``; the paper's post-norm stack has none.
    """

    def __init__(
        self,
        dictionary,
        embed_tokens: TokenEmbedding,
        sizes: SideSizes,
        positional_encoding: str,
        max_positions: int,
    ):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.embed_positions = make_positional_encoding(positional_encoding, sizes.d_model, max_positions)
        self.input_embedding = InputEmbedding(self.embed_tokens, self.embed_positions, sizes.P_drop)
        self.max_source_positions = max_positions
        self.layers = nn.ModuleList(EncoderLayer(sizes) for _ in range(sizes.N))
        # only when on: post-norm checkpoints load
        self.layer_norm = nn.LayerNorm(sizes.d_model) if sizes.pre_norm else None

    def forward(
        self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None, return_all_attention: bool = False, **unused
    ) -> Dict[str, List[Any]]:
        """src_tokens ``(B, S)`` → fairseq's encoder-out dict; ``encoder_out[0]`` is ``(B, S, d_model)``."""
        padding_mask = src_tokens.eq(self.padding_idx)  # (B, S)
        positions = positions_from_padding(src_tokens, self.padding_idx)  # (B, S)
        x = self.input_embedding(src_tokens, positions)  # (B, S, d_model)
        attentions = []
        for layer in self.layers:  # the mask is passed as it is: asking whether it has any pad would sync the device
            x, weights = layer(x, padding_mask, need_weights=return_all_attention)
            attentions.append(weights)
        if self.layer_norm is not None:
            x = self.layer_norm(x)  # (B, S, d_model)
        return {
            "encoder_out": [x],  # (B, S, d_model): batch-first, unlike fairseq's own T×B×C
            "encoder_padding_mask": [padding_mask],  # (B, S), True = pad
            "encoder_attention": attentions if return_all_attention else [],  # N × (B, h, S, S)
            "src_tokens": [src_tokens],
            "src_lengths": [] if src_lengths is None else [src_lengths],
        }

    def reorder_encoder_out(self, encoder_out: Dict[str, List[Any]], new_order: Tensor) -> Dict[str, List[Any]]:
        """Select batch rows ``new_order`` (beam expansion, finished sentences leaving the batch)."""
        return {
            key: [t.index_select(0, new_order) if isinstance(t, Tensor) else t for t in value]
            for key, value in encoder_out.items()
        }

    def max_positions(self) -> int:
        return self.max_source_positions
