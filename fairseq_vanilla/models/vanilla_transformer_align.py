"""Jointly learning to align and translate (Garg et al., 2019): the Transformer with a supervised alignment head.

The model is the paper's Transformer unchanged; what it adds is *which* attention the criterion
``vanilla_label_smoothed_cross_entropy_with_alignment`` supervises: the cross-attention of decoder layer
``--alignment-layer`` averaged over its first ``--alignment-heads`` heads (Garg et al.: the penultimate layer, one
head). With ``--full-context-alignment`` that attention comes from a second decoder pass without the causal mask,
so the alignment of target word *i* may look at the words after it (§4.2 of Garg et al.); translation itself
always uses the masked pass. fairseq's equivalent is ``transformer_align``; the names here do not clash with it.
"""

from dataclasses import dataclass, field

from fairseq.models import register_model

from ..fairseq_fixes.errors import FlagError
from .config import VanillaTransformerConfig, register_presets, resolve_defaults
from .vanilla_transformer import VanillaTransformerModel


@dataclass
class VanillaTransformerAlignConfig(VanillaTransformerConfig):
    """Flags of ``vanilla_transformer_align``: the Transformer's, plus which attention is the alignment."""

    alignment_heads: int = field(
        default=1,
        metadata={
            "help": "number of cross-attention heads (the first ones) of --alignment-layer averaged into the "
            "supervised alignment (Garg et al.: 1)"
        },
    )
    full_context_alignment: bool = field(
        default=False,
        metadata={"help": "compute the alignment in a second decoder pass without the causal mask (Garg et al. §4.2)"},
    )


@register_model("vanilla_transformer_align", dataclass=VanillaTransformerAlignConfig)
class VanillaTransformerAlignModel(VanillaTransformerModel):
    """The vanilla Transformer whose ``forward`` returns the supervised alignment head as ``extra["attn"][0]``."""

    def __init__(self, encoder, decoder, alignment_heads: int, full_context_alignment: bool):
        super().__init__(encoder, decoder)
        self.alignment_heads = alignment_heads
        self.full_context_alignment = full_context_alignment

    @classmethod
    def build_model(cls, cfg, task):
        resolve_defaults(cfg)
        heads = cfg.decoder_attention_heads
        if not 1 <= cfg.alignment_heads <= heads:
            raise FlagError(
                f"--alignment-heads must be between 1 and the decoder's {heads} heads, got {cfg.alignment_heads}"
            )
        layers = cfg.decoder_layers
        if not -layers <= cfg.alignment_layer < layers:
            raise FlagError(
                f"--alignment-layer {cfg.alignment_layer} does not exist in a {layers}-layer decoder "
                f"(0…{layers - 1}, or -1 for the last)"
            )
        base = VanillaTransformerModel.build_model(cfg, task)
        return cls(base.encoder, base.decoder, cfg.alignment_heads, cfg.full_context_alignment)

    def forward(self, src_tokens, src_lengths, prev_output_tokens, **kwargs):
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths)
        return self.forward_decoder(prev_output_tokens, encoder_out, **kwargs)

    def forward_decoder(
        self, prev_output_tokens, encoder_out=None, incremental_state=None, features_only=False, **extra_args
    ):
        attn_args = dict(alignment_layer=self.decoder.alignment_layer, alignment_heads=self.alignment_heads)
        out = self.decoder(
            prev_output_tokens,
            encoder_out,
            incremental_state=incremental_state,
            features_only=features_only,
            **attn_args,
            **extra_args,
        )
        if self.full_context_alignment:
            _, align = self.decoder(
                prev_output_tokens,
                encoder_out,
                features_only=True,
                full_context_alignment=True,
                **attn_args,
                **extra_args,
            )
            out[1]["attn"] = align["attn"]
        return out


# Garg et al. supervise the penultimate decoder layer (fairseq's transformer_align: layer 4 of 6).
PRESETS = {
    "vanilla_transformer_align": dict(alignment_layer=-2),
}
register_presets("vanilla_transformer_align", PRESETS, VanillaTransformerAlignConfig)
