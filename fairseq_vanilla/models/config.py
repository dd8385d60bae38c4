"""The flags of ``vanilla_transformer`` (§3.1, Table 3), their checks, and the architectures (presets) built on them.

The flags' defaults are the paper's base model (``modules/sizes.py:BASE``); a preset names only what differs from
them. The sizes derived from other flags are worked out here and nowhere else: the decoder's sizes default to the
encoder's (:func:`side_size`), and d_k = d_v = d_model / h unless given (``modules/sizes.py:head_dims``).
:func:`resolve_defaults` writes the decoder's out where flags become a config (the preset, applied by fairseq's
argument parser) and where a config becomes a model (``build_model``, also for a checkpoint saved before the sizes
were written out); :func:`side_sizes` converts fairseq's flag names to one side's :class:`SideSizes` in the paper's
symbols, every default resolved, for the model, the memory planner and the table renderer.
"""

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import ARCH_CONFIG_REGISTRY, register_model_architecture
from omegaconf import OmegaConf, open_dict

from ..fairseq_fixes.errors import FlagError, check_fraction
from ..modules.sizes import BASE, SideSizes, head_dims  # noqa: F401  (head_dims: read here by the table and tests)

POSITIONAL_ENCODING_CHOICES = ChoiceEnum(["sinusoidal", "learned", "none"])
DECODER_SIZES = ("embed_dim", "ffn_embed_dim", "layers", "attention_heads")  # decoder_X defaults to encoder_X


@dataclass
class VanillaEncoderConfig(FairseqDataclass):
    """Flags of the encoder (§3.1), shared by ``vanilla_transformer`` and ``vanilla_transformer_classifier``;
    the defaults are the paper's base model (Table 3, "base")."""

    dropout: float = field(
        default=BASE.P_drop,
        metadata={"help": "P_drop: dropout on each sub-layer output and on embeddings+positions (§5.4)"},
    )
    attention_dropout: float = field(
        default=BASE.attention_dropout, metadata={"help": "dropout on attention weights (not in the paper)"}
    )
    activation_dropout: float = field(
        default=BASE.activation_dropout, metadata={"help": "dropout after the FFN's ReLU (not in the paper)"}
    )
    encoder_embed_dim: int = field(default=BASE.d_model, metadata={"help": "d_model of the encoder"})
    encoder_ffn_embed_dim: int = field(default=BASE.d_ff, metadata={"help": "d_ff of the encoder"})
    encoder_layers: int = field(default=BASE.N, metadata={"help": "N, number of encoder layers"})
    encoder_attention_heads: int = field(default=BASE.h, metadata={"help": "h, attention heads in the encoder"})
    attention_key_dim: Optional[int] = field(
        default=None,
        metadata={"help": "d_k, the size of each head's queries and keys (default: d_model/h; Table 3 row B)"},
    )
    attention_value_dim: Optional[int] = field(
        default=None, metadata={"help": "d_v, the size of each head's values (default: d_model/h)"}
    )
    positional_encoding: POSITIONAL_ENCODING_CHOICES = field(
        default="sinusoidal",
        metadata={"help": "sinusoidal (§3.5), learned (Table 3 row E) or none (no position signal; not the paper's)"},
    )
    max_source_positions: int = field(default=1024, metadata={"help": "longest source sentence, in tokens"})
    encoder_normalize_before: bool = field(
        default=False,
        metadata={
            "help": "pre-norm encoder: x + Sublayer(LayerNorm(x)) and a final LayerNorm (Xiong et al. 2020) in place "
            "of the paper's post-norm LayerNorm(x + Sublayer(x)) (§3.1)"
        },
    )


@dataclass
class VanillaTransformerConfig(VanillaEncoderConfig):
    """Flags of the ``vanilla_transformer`` model: the encoder's, plus the decoder's and the embedding sharing."""

    decoder_embed_dim: Optional[int] = field(
        default=None,
        metadata={"help": "d_model of the decoder; must equal the encoder's (default: --encoder-embed-dim)"},
    )
    decoder_ffn_embed_dim: Optional[int] = field(
        default=None, metadata={"help": "d_ff of the decoder (default: --encoder-ffn-embed-dim)"}
    )
    decoder_layers: Optional[int] = field(
        default=None, metadata={"help": "N of the decoder (default: --encoder-layers)"}
    )
    decoder_attention_heads: Optional[int] = field(
        default=None, metadata={"help": "h of the decoder (default: --encoder-attention-heads)"}
    )
    share_all_embeddings: bool = field(
        default=False,
        metadata={"help": "one matrix for source, target and pre-softmax weights (§3.4); needs a joined dictionary"},
    )
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "tie the decoder's input embedding and its pre-softmax weights (§3.4)"}
    )
    max_target_positions: int = field(default=1024, metadata={"help": "longest target sentence, in tokens"})
    decoder_normalize_before: bool = field(
        default=False,
        metadata={"help": "pre-norm decoder, as --encoder-normalize-before for the encoder (not the paper's, §3.1)"},
    )
    alignment_layer: int = field(
        default=-1,
        metadata={
            "help": "decoder layer whose cross-attention (averaged over heads) is returned as the alignment; -1 = last"
        },
    )


def _flag(cfg, name: str):
    """A flag's value in a config dataclass, Namespace, OmegaConf node or mapping (a checkpoint's); None if unset."""
    return cfg.get(name) if isinstance(cfg, Mapping) else getattr(cfg, name, None)


def side_size(cfg, side: str, size: str):
    """``{side}_{size}``, or ``encoder_{size}`` where the decoder's is unset: the decoder's sizes default to the
    encoder's."""
    value = _flag(cfg, f"{side}_{size}")
    return _flag(cfg, f"encoder_{size}") if value is None else value


def side_sizes(cfg, side: str = "encoder") -> SideSizes:
    """The encoder's or the decoder's :class:`SideSizes` of a config (any kind :func:`_flag` reads): the one place
    where fairseq's flag names become the paper's symbols. A rate a config saved before its flag existed lacks is
    the base model's."""
    d_model, h = side_size(cfg, side, "embed_dim"), side_size(cfg, side, "attention_heads")
    rate = lambda name, base: base if _flag(cfg, name) is None else _flag(cfg, name)  # noqa: E731
    return SideSizes(
        N=side_size(cfg, side, "layers"),
        d_model=d_model,
        d_ff=side_size(cfg, side, "ffn_embed_dim"),
        h=h,
        d_k=_flag(cfg, "attention_key_dim"),
        d_v=_flag(cfg, "attention_value_dim"),
        P_drop=rate("dropout", BASE.P_drop),
        attention_dropout=rate("attention_dropout", BASE.attention_dropout),
        activation_dropout=rate("activation_dropout", BASE.activation_dropout),
        pre_norm=pre_norm(cfg, side),
    )


def pre_norm(cfg, side: str = "encoder") -> bool:
    """Whether the encoder's or the decoder's residuals are pre-norm (``--{side}-normalize-before``); False for a
    config saved before the flag existed."""
    return bool(_flag(cfg, f"{side}_normalize_before"))


def resolve_defaults(cfg):
    """Write each decoder size left unset (``None``) as its encoder twin's value; returns ``cfg``, changed in place.

    Takes a config dataclass, an argparse Namespace or an OmegaConf node; a config without decoder flags (the
    classifier's) is returned as it is.
    """
    with open_dict(cfg) if OmegaConf.is_config(cfg) else contextlib.nullcontext():
        for size in DECODER_SIZES:
            name = f"decoder_{size}"
            if hasattr(cfg, name) and getattr(cfg, name) is None:
                setattr(cfg, name, side_size(cfg, "decoder", size))
    return cfg


def check_config(cfg, sides=("encoder", "decoder")) -> None:
    """Reject impossible flag combinations with a message that names the flag; ``cfg`` has its defaults resolved."""
    for side in sides:
        layers = getattr(cfg, f"{side}_layers")
        if layers < 1:
            raise FlagError(f"--{side}-layers must be at least 1, got {layers}")
        d_model, h = getattr(cfg, f"{side}_embed_dim"), getattr(cfg, f"{side}_attention_heads")
        head_dims_given = cfg.attention_key_dim is not None and cfg.attention_value_dim is not None
        if h < 1 or (d_model % h != 0 and not head_dims_given):
            raise FlagError(f"--{side}-embed-dim ({d_model}) must be divisible by --{side}-attention-heads ({h})")
        if getattr(cfg, f"{side}_ffn_embed_dim") < 1:
            raise FlagError(f"--{side}-ffn-embed-dim must be positive")
    for name in ("attention_key_dim", "attention_value_dim"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise FlagError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    if "decoder" in sides and cfg.decoder_embed_dim != cfg.encoder_embed_dim:
        raise FlagError(
            f"--decoder-embed-dim ({cfg.decoder_embed_dim}) must equal --encoder-embed-dim "
            f"({cfg.encoder_embed_dim}): cross-attention (§3.2.3) mixes both in one d_model"
        )
    for name in ("dropout", "attention_dropout", "activation_dropout"):
        check_fraction(name, getattr(cfg, name))


# Architectures: each preset names only what differs from the config's defaults (the paper's base model).
PRESETS = {
    "vanilla_transformer": {},
    "vanilla_transformer_big": dict(
        encoder_embed_dim=1024, encoder_ffn_embed_dim=4096, encoder_attention_heads=16, dropout=0.3
    ),
    "vanilla_transformer_tiny": dict(
        encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=4, encoder_layers=2
    ),
}


def apply_preset(args, preset: Dict[str, Any], config_class=VanillaTransformerConfig) -> None:
    """Fill every flag the user did not give: first from the preset, then from the config's defaults; then the
    decoder sizes still unset from the encoder's (:func:`resolve_defaults`)."""
    defaults = config_class()
    for f in fields(config_class):
        if getattr(args, f.name, None) is None:
            setattr(args, f.name, preset.get(f.name, getattr(defaults, f.name)))
    resolve_defaults(args)


def register_presets(model_name: str, presets: Dict[str, Dict[str, Any]], config_class) -> None:
    """Register each preset as a fairseq architecture of ``model_name``."""
    for arch_name, preset in presets.items():
        fill = lambda args, preset=preset: apply_preset(args, preset, config_class)  # noqa: E731
        if arch_name in ARCH_CONFIG_REGISTRY:
            # register_model(dataclass=…) registered the base architecture with a no-op; fill the defaults instead,
            # so that the parsed argparse Namespace is complete, as for every other preset.
            ARCH_CONFIG_REGISTRY[arch_name] = fill
        else:
            register_model_architecture(model_name, arch_name)(fill)
