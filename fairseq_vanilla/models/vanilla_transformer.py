"""fairseq glue for the paper's encoder-decoder (§3): registry names, config, incremental state.

The paper's blocks live in :mod:`fairseq_vanilla.modules` (plain PyTorch). Here they are wired into
fairseq's ``FairseqEncoderDecoderModel``; fairseq flag names are converted to paper symbols once, in
:meth:`VanillaTransformerModel.build_model`.

Layout: fairseq's own Transformer passes activations as ``T×B×C``; this model keeps them batch-first,
``B×T×C``, everywhere (also in ``encoder_out["encoder_out"]``), which is what the fused attention kernel
wants. Only our own ``reorder_encoder_out`` reads that tensor, so fairseq's beam search is unaffected.
"""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import (
    ARCH_CONFIG_REGISTRY,
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
    register_model_architecture,
)
from torch import Tensor, nn

from ..modules import (
    DecoderLayer,
    EncoderLayer,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    positions_from_padding,
)

POSITIONAL_ENCODING_CHOICES = ChoiceEnum(["sinusoidal", "learned"])


@dataclass
class VanillaEncoderConfig(FairseqDataclass):
    """Flags of the encoder (§3.1), shared by ``vanilla_transformer`` and ``vanilla_transformer_classifier``;
    the defaults are the paper's base model (Table 3, "base")."""

    dropout: float = field(default=0.1, metadata={"help": "P_drop: dropout on each sub-layer output and on embeddings+positions (§5.4)"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights (not in the paper)"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN's ReLU (not in the paper)"})
    encoder_embed_dim: int = field(default=512, metadata={"help": "d_model of the encoder"})
    encoder_ffn_embed_dim: int = field(default=2048, metadata={"help": "d_ff of the encoder"})
    encoder_layers: int = field(default=6, metadata={"help": "N, number of encoder layers"})
    encoder_attention_heads: int = field(default=8, metadata={"help": "h, attention heads in the encoder"})
    attention_key_dim: Optional[int] = field(default=None, metadata={"help": "d_k, the size of each head's queries and keys (default: d_model/h; Table 3 row B)"})
    attention_value_dim: Optional[int] = field(default=None, metadata={"help": "d_v, the size of each head's values (default: d_model/h)"})
    positional_encoding: POSITIONAL_ENCODING_CHOICES = field(default="sinusoidal", metadata={"help": "sinusoidal (§3.5) or learned (Table 3 row E)"})
    max_source_positions: int = field(default=1024, metadata={"help": "longest source sentence, in tokens"})


@dataclass
class VanillaTransformerConfig(VanillaEncoderConfig):
    """Flags of the ``vanilla_transformer`` model: the encoder's, plus the decoder's and the embedding sharing."""

    decoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "d_model of the decoder; must equal the encoder's (default: --encoder-embed-dim)"})
    decoder_ffn_embed_dim: Optional[int] = field(default=None, metadata={"help": "d_ff of the decoder (default: --encoder-ffn-embed-dim)"})
    decoder_layers: Optional[int] = field(default=None, metadata={"help": "N of the decoder (default: --encoder-layers)"})
    decoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "h of the decoder (default: --encoder-attention-heads)"})
    share_all_embeddings: bool = field(default=False, metadata={"help": "one matrix for source, target and pre-softmax weights (§3.4); needs a joined dictionary"})
    share_decoder_input_output_embed: bool = field(default=False, metadata={"help": "tie the decoder's input embedding and its pre-softmax weights (§3.4)"})
    max_target_positions: int = field(default=1024, metadata={"help": "longest target sentence, in tokens"})
    alignment_layer: int = field(default=-1, metadata={"help": "decoder layer whose cross-attention (averaged over heads) is returned as the alignment; -1 = last"})


def check_config(cfg, sides=("encoder", "decoder")) -> None:
    """Reject impossible flag combinations with a message that names the flag."""
    for side in sides:
        layers = _get(cfg, f"{side}_layers")
        if layers < 1:
            raise ValueError(f"--{side}-layers must be at least 1, got {layers}")
        d_model, h = _get(cfg, f"{side}_embed_dim"), _get(cfg, f"{side}_attention_heads")
        head_dims_given = cfg.attention_key_dim is not None and cfg.attention_value_dim is not None
        if h < 1 or (d_model % h != 0 and not head_dims_given):
            raise ValueError(
                f"--{side}-embed-dim ({d_model}) must be divisible by --{side}-attention-heads ({h})"
            )
        if _get(cfg, f"{side}_ffn_embed_dim") < 1:
            raise ValueError(f"--{side}-ffn-embed-dim must be positive")
    for name in ("attention_key_dim", "attention_value_dim"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    if "decoder" in sides and _get(cfg, "decoder_embed_dim") != cfg.encoder_embed_dim:
        raise ValueError(
            f"--decoder-embed-dim ({_get(cfg, 'decoder_embed_dim')}) must equal --encoder-embed-dim "
            f"({cfg.encoder_embed_dim}): cross-attention (§3.2.3) mixes both in one d_model"
        )
    for name in ("dropout", "attention_dropout", "activation_dropout"):
        p = getattr(cfg, name)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1), got {p}")


def _get(cfg, name: str):
    """A size flag, with the decoder's falling back to the encoder's twin."""
    value = getattr(cfg, name, None)
    if value is None and name.startswith("decoder_"):
        value = getattr(cfg, "encoder_" + name[len("decoder_"):])
    return value


def make_positional_encoding(kind: str, d_model: int, max_positions: int) -> nn.Module:
    if kind == "learned":
        return LearnedPositionalEncoding(d_model, max_positions)
    return SinusoidalPositionalEncoding(d_model, max_positions)


class VanillaTransformerEncoder(FairseqEncoder):
    """Encoder (§3.1): TokenEmbedding·√d_model + PE, Dropout, then N encoder layers."""

    def __init__(self, dictionary, embed_tokens: TokenEmbedding, d_model: int, h: int, d_ff: int, N: int,
                 dropout: float, attention_dropout: float, activation_dropout: float,
                 positional_encoding: str, max_positions: int, d_k: Optional[int] = None, d_v: Optional[int] = None):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.embed_positions = make_positional_encoding(positional_encoding, d_model, max_positions)
        self.dropout = dropout
        self.max_source_positions = max_positions
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, h, d_ff, dropout, attention_dropout, activation_dropout, d_k, d_v) for _ in range(N)
        )

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None, return_all_attention: bool = False,
                **unused) -> Dict[str, List[Any]]:
        """src_tokens ``(B, S)`` → fairseq's encoder-out dict; ``encoder_out[0]`` is ``(B, S, d_model)``."""
        padding_mask = src_tokens.eq(self.padding_idx)  # (B, S)
        positions = positions_from_padding(src_tokens, self.padding_idx)  # (B, S)
        x = self.embed_tokens(src_tokens) + self.embed_positions(positions)  # (B, S, d_model)
        x = F.dropout(x, p=self.dropout, training=self.training)
        attentions = []
        for layer in self.layers:  # the mask is passed as it is: asking whether it has any pad would sync the device
            x, weights = layer(x, padding_mask, need_weights=return_all_attention)
            attentions.append(weights)
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


class VanillaTransformerDecoder(FairseqIncrementalDecoder):
    """Decoder (§3.1): embedding·√d_model + PE, N decoder layers, then the pre-softmax linear map (§3.4).

    Incremental decoding keeps, per layer, the self-attention keys/values of earlier steps and the
    cross-attention keys/values of the encoder output (computed once per sentence) in fairseq's
    ``incremental_state``; each step then feeds only the newest token.
    """

    def __init__(self, dictionary, embed_tokens: TokenEmbedding, d_model: int, h: int, d_ff: int, N: int,
                 dropout: float, attention_dropout: float, activation_dropout: float,
                 positional_encoding: str, max_positions: int, share_input_output_embed: bool,
                 alignment_layer: int = -1, d_k: Optional[int] = None, d_v: Optional[int] = None):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.embed_positions = make_positional_encoding(positional_encoding, d_model, max_positions)
        self.dropout = dropout
        self.max_target_positions = max_positions
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, h, d_ff, dropout, attention_dropout, activation_dropout, d_k, d_v) for _ in range(N)
        )
        self.alignment_layer = alignment_layer % N
        self.need_attn = False  # set by fairseq-generate --print-alignment (make_generation_fast_)
        if share_input_output_embed:
            self.output_projection = None
        else:
            self.output_projection = nn.Linear(d_model, len(dictionary), bias=False)
            nn.init.normal_(self.output_projection.weight, mean=0.0, std=d_model**-0.5)

    def forward(self, prev_output_tokens: Tensor, encoder_out: Optional[Dict[str, List[Any]]] = None,
                incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
                features_only: bool = False, alignment_layer: Optional[int] = None,
                alignment_heads: Optional[int] = None, full_context_alignment: bool = False,
                need_attn: bool = False, return_all_attention: bool = False, **unused):
        """prev_output_tokens ``(B, T)`` → (logits ``(B, T, V)``, ``{"attn": [(B, T, S)|None], "inner_states": […]}``)."""
        x, extra = self.extract_features(prev_output_tokens, encoder_out, incremental_state,
                                         alignment_layer=alignment_layer, alignment_heads=alignment_heads,
                                         full_context_alignment=full_context_alignment, need_attn=need_attn,
                                         return_all_attention=return_all_attention)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens: Tensor, encoder_out: Optional[Dict[str, List[Any]]],
                         incremental_state=None, alignment_layer: Optional[int] = None,
                         alignment_heads: Optional[int] = None, full_context_alignment: bool = False,
                         need_attn: bool = False, return_all_attention: bool = False, **unused):
        """The decoder stack; ``extra["attn"][0]`` is the alignment: layer ``alignment_layer``'s cross-attention
        ``(B, T, S)``, averaged over its first ``alignment_heads`` heads (all by default). It is computed when
        asked for (``need_attn``, fairseq-generate's ``--print-alignment``, or an alignment layer/heads given, as
        the alignment model and criterion do); otherwise every layer keeps the fused attention kernel.
        ``return_all_attention`` adds every layer's per-head weights: ``extra["self_attention"]`` N × ``(B, h, T, T)``
        and ``extra["cross_attention"]`` N × ``(B, h, T, S)``.
        ``full_context_alignment`` lifts the causal mask (Garg et al. 2019, §4.2; training/scoring only)."""
        if full_context_alignment and incremental_state is not None:
            raise ValueError("full_context_alignment needs the whole target; it cannot run step by step")
        prefix_len = prev_output_tokens.size(1)
        positions = positions_from_padding(prev_output_tokens, self.padding_idx)  # (B, T)
        self_padding_mask = prev_output_tokens.eq(self.padding_idx)  # (B, T): target padding, either side
        if incremental_state is not None:
            # (B, 1): only the newest token; fairseq's search feeds unpadded prefixes, the cache holds the rest
            prev_output_tokens = prev_output_tokens[:, -1:]
            positions = positions[:, -1:]  # (B, 1)
            self_padding_mask = None
        x = self.embed_tokens(prev_output_tokens) + self.embed_positions(positions, prefix_len)  # (B, T, d_model)
        x = F.dropout(x, p=self.dropout, training=self.training)

        memory = encoder_out["encoder_out"][0]  # (B, S, d_model)
        memory_mask = encoder_out["encoder_padding_mask"][0]  # (B, S), passed as it is (no .any(): no device sync)
        caches = self._layer_caches(incremental_state)
        align_at = self.alignment_layer if alignment_layer is None else alignment_layer % len(self.layers)
        want_attn = (need_attn or alignment_layer is not None or alignment_heads is not None
                     or (self.need_attn and not self.training))
        attn = None
        inner_states = [x]
        self_attention, cross_attention = [], []
        for i, layer in enumerate(self.layers):
            x, self_w, cross_w = layer(
                x, memory, memory_mask, cache=None if caches is None else caches[i],
                need_self_weights=return_all_attention,
                need_cross_weights=return_all_attention or (want_attn and i == align_at),
                causal=not full_context_alignment, self_padding_mask=self_padding_mask)
            if want_attn and i == align_at:
                attn = cross_w[:, :alignment_heads].float().mean(dim=1)  # (B, T, S): averaged over heads
            self_attention.append(self_w)
            cross_attention.append(cross_w)
            inner_states.append(x)
        extra = {"attn": [attn], "inner_states": inner_states}
        if return_all_attention:
            extra["self_attention"], extra["cross_attention"] = self_attention, cross_attention
        return x, extra

    def output_layer(self, features: Tensor) -> Tensor:
        """Pre-softmax linear transformation (§3.4): ``(B, T, d_model)`` → ``(B, T, V)``."""
        if self.output_projection is None:
            return F.linear(features, self.embed_tokens.weight)
        return self.output_projection(features)

    def _layer_caches(self, incremental_state) -> Optional[List[Dict[str, Dict[str, Tensor]]]]:
        if incremental_state is None:
            return None
        caches = self.get_incremental_state(incremental_state, "layer_caches")
        if caches is None:
            caches = [{"self_attn": {}, "cross_attn": {}} for _ in self.layers]
            self.set_incremental_state(incremental_state, "layer_caches", caches)
        return caches

    def reorder_incremental_state(self, incremental_state, new_order: Tensor):
        """Select batch rows ``new_order`` of every cached key/value (beam reorder, finished sentences)."""
        caches = self.get_incremental_state(incremental_state, "layer_caches")
        if caches is None:
            return
        for cache in caches:
            for sub in cache.values():
                for key in list(sub):
                    sub[key] = sub[key].index_select(0, new_order)  # (B', h, T, d_k)

    def make_generation_fast_(self, need_attn: bool = False, **kwargs):
        self.need_attn = need_attn

    def max_positions(self) -> int:
        return self.max_target_positions


@register_model("vanilla_transformer", dataclass=VanillaTransformerConfig)
class VanillaTransformerModel(FairseqEncoderDecoderModel):
    """The Transformer of "Attention Is All You Need" (Vaswani et al., 2017), post-norm, written from scratch."""

    @classmethod
    def build_model(cls, cfg, task):
        """Convert fairseq's flags to the paper's symbols (once) and build encoder and decoder."""
        check_config(cfg)
        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        d_model = cfg.encoder_embed_dim
        if cfg.share_all_embeddings:
            if src_dict != tgt_dict:
                raise ValueError("--share-all-embeddings needs a joined dictionary (fairseq-preprocess --joined-dictionary)")
            encoder_embed = TokenEmbedding(len(src_dict), d_model, src_dict.pad())
            decoder_embed = encoder_embed
        else:
            encoder_embed = TokenEmbedding(len(src_dict), d_model, src_dict.pad())
            decoder_embed = TokenEmbedding(len(tgt_dict), d_model, tgt_dict.pad())
        common = dict(dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
                      activation_dropout=cfg.activation_dropout, positional_encoding=cfg.positional_encoding,
                      d_k=cfg.attention_key_dim, d_v=cfg.attention_value_dim)
        encoder = VanillaTransformerEncoder(
            src_dict, encoder_embed, d_model=d_model, h=cfg.encoder_attention_heads,
            d_ff=cfg.encoder_ffn_embed_dim, N=cfg.encoder_layers, max_positions=cfg.max_source_positions, **common)
        decoder = VanillaTransformerDecoder(
            tgt_dict, decoder_embed, d_model=d_model, h=_get(cfg, "decoder_attention_heads"),
            d_ff=_get(cfg, "decoder_ffn_embed_dim"), N=_get(cfg, "decoder_layers"),
            max_positions=cfg.max_target_positions,
            share_input_output_embed=cfg.share_all_embeddings or cfg.share_decoder_input_output_embed,
            alignment_layer=cfg.alignment_layer, **common)
        return cls(encoder, decoder)

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, checkpoint_file: str = "checkpoint_best.pt",
                        data_name_or_path: str = ".", **kwargs):
        """fairseq's hub interface (``.translate``, ``.sample``, ``.generate``) around a trained checkpoint.

        As ``BaseFairseqModel.from_pretrained``, with one addition: ``tokenizer=`` and ``bpe=`` name a registered
        choice and that choice's flags are keyword arguments too (``bpe_codes=…``, ``moses_lower=True``); fairseq
        itself applies such flags only to old checkpoints that hold an argparse Namespace. The checkpoint is read
        by fairseq's loader, which this package restricts to torch's ``weights_only`` unpickler.
        """
        from fairseq import hub_utils
        from fairseq.data import encoders  # noqa: F401  (sets up the tokenizer and bpe registries)
        from fairseq.registry import REGISTRIES
        from omegaconf import OmegaConf, open_dict

        loaded = hub_utils.from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path, **kwargs)
        cfg = loaded["args"]
        registries = {group: REGISTRIES[group]["dataclass_registry"] for group in ("tokenizer", "bpe")}
        with open_dict(cfg):
            for group, registry in registries.items():
                name = kwargs.get(group)
                if name is None:
                    continue
                if name not in registry:
                    raise ValueError(f"{group}={name!r} is not a registered --{group} (known: {', '.join(sorted(registry))})")
                names = {f.name for f in fields(registry[name])}
                values = {k: v for k, v in kwargs.items() if k in names}
                for lang in ("source_lang", "target_lang"):  # the Moses rules follow the model's languages
                    if lang in names and lang not in values and cfg.task.get(lang):
                        values[lang] = cfg.task[lang]
                cfg[group] = OmegaConf.create({"_name": name, **values})
        return hub_utils.GeneratorHubInterface(cfg, loaded["task"], loaded["models"])


# Architectures: each preset names only what differs from the config's defaults (the paper's base model).
PRESETS = {
    "vanilla_transformer": {},
    "vanilla_transformer_big": dict(encoder_embed_dim=1024, encoder_ffn_embed_dim=4096,
                                    encoder_attention_heads=16, dropout=0.3),
    "vanilla_transformer_tiny": dict(encoder_embed_dim=128, encoder_ffn_embed_dim=512,
                                     encoder_attention_heads=4, encoder_layers=2),
}


def apply_preset(args, preset: Dict[str, Any], config_class=VanillaTransformerConfig) -> None:
    """Fill every flag the user did not give: first from the preset, then from the config's defaults."""
    defaults = config_class()
    for f in fields(config_class):
        if getattr(args, f.name, None) is None:
            setattr(args, f.name, preset.get(f.name, getattr(defaults, f.name)))


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


register_presets("vanilla_transformer", PRESETS, VanillaTransformerConfig)
