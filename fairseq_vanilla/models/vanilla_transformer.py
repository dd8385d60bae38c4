"""fairseq glue for the paper's encoder-decoder (§3): the ``vanilla_transformer`` model and its architectures.

The paper's blocks live in :mod:`fairseq_vanilla.modules` (plain PyTorch); :mod:`.encoder` and :mod:`.decoder` wire
them into fairseq's encoder and incremental decoder, :mod:`.config` holds the flags, their checks and the presets.
Here fairseq flag names are converted to paper symbols once, in :meth:`VanillaTransformerModel.build_model`.
"""

from fairseq.models import FairseqEncoderDecoderModel, register_model

from ..fairseq_fixes.errors import FlagError
from ..modules import TokenEmbedding
from .config import (
    PRESETS,
    VanillaTransformerConfig,
    check_config,
    register_presets,
    resolve_defaults,
    side_sizes,
)
from .decoder import VanillaTransformerDecoder
from .encoder import VanillaTransformerEncoder

__all__ = [
    "PRESETS",
    "VanillaTransformerConfig",
    "VanillaTransformerDecoder",
    "VanillaTransformerEncoder",
    "VanillaTransformerModel",
]


@register_model("vanilla_transformer", dataclass=VanillaTransformerConfig)
class VanillaTransformerModel(FairseqEncoderDecoderModel):
    """The Transformer of "Attention Is All You Need" (Vaswani et al., 2017), post-norm, written from scratch.

    ``--encoder-normalize-before``/``--decoder-normalize-before`` make a side pre-norm (not the paper's, §3.1)."""

    @classmethod
    def build_model(cls, cfg, task):
        """Convert fairseq's flags to the paper's symbols (once) and build encoder and decoder."""
        resolve_defaults(cfg)  # a checkpoint saved with the decoder sizes unset gets the encoder's, as it was trained
        check_config(cfg)
        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        enc, dec = side_sizes(cfg, "encoder"), side_sizes(cfg, "decoder")
        d_model = enc.d_model  # the decoder's is the same (check_config)
        if cfg.share_all_embeddings:
            if src_dict != tgt_dict:
                raise FlagError(
                    "--share-all-embeddings needs a joined dictionary (fairseq-preprocess --joined-dictionary)"
                )
            encoder_embed = TokenEmbedding(len(src_dict), d_model, src_dict.pad())
            decoder_embed = encoder_embed
        else:
            encoder_embed = TokenEmbedding(len(src_dict), d_model, src_dict.pad())
            decoder_embed = TokenEmbedding(len(tgt_dict), d_model, tgt_dict.pad())
        encoder = VanillaTransformerEncoder(
            src_dict, encoder_embed, enc, cfg.positional_encoding, cfg.max_source_positions
        )
        decoder = VanillaTransformerDecoder(
            tgt_dict,
            decoder_embed,
            dec,
            share_input_output_embed=cfg.share_all_embeddings or cfg.share_decoder_input_output_embed,
            positional_encoding=cfg.positional_encoding,
            max_positions=cfg.max_target_positions,
            alignment_layer=cfg.alignment_layer,
        )
        return cls(encoder, decoder)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str,
        checkpoint_file: str = "checkpoint_best.pt",
        data_name_or_path: str = ".",
        **kwargs,
    ):
        """fairseq's hub interface (``.translate``, ``.sample``, ``.generate``) around a trained checkpoint, with the
        tokenizer and BPE named by keyword arguments: see :func:`.hub_interface.generator_hub_interface`."""
        from .hub_interface import generator_hub_interface

        return generator_hub_interface(model_name_or_path, checkpoint_file, data_name_or_path, **kwargs)


register_presets("vanilla_transformer", PRESETS, VanillaTransformerConfig)
