"""The decoder (§3.1) as a fairseq ``FairseqIncrementalDecoder``: the paper's input embedding, N decoder layers, the
pre-softmax linear map (§3.4), the alignment (one layer's cross-attention) and step-by-step decoding."""

from typing import Any, Dict, List, Optional

import torch.nn.functional as F
from fairseq.models import FairseqIncrementalDecoder
from torch import Tensor, nn

from ..modules import (
    DecoderLayer,
    InputEmbedding,
    SideSizes,
    TokenEmbedding,
    make_positional_encoding,
    positions_from_padding,
)


class VanillaTransformerDecoder(FairseqIncrementalDecoder):
    """Decoder (§3.1): Dropout(embedding·√d_model + PE), N decoder layers, then the pre-softmax linear map (§3.4);
    the stack is built from one :class:`SideSizes`.

    Incremental decoding keeps, per layer, the self-attention keys/values of earlier steps and the
    cross-attention keys/values of the encoder output (computed once per sentence) in fairseq's
    ``incremental_state``; each step then feeds only the newest token.
    ``sizes.pre_norm``: pre-norm layers and a final LayerNorm (``layer_norm``) before the pre-softmax map, as
    fairseq's ``--decoder-normalize-before``; the paper's post-norm stack has none.
    """

    def __init__(
        self,
        dictionary,
        embed_tokens: TokenEmbedding,
        sizes: SideSizes,
        share_input_output_embed: bool,
        positional_encoding: str,
        max_positions: int,
        alignment_layer: int = -1,
    ):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.embed_positions = make_positional_encoding(positional_encoding, sizes.d_model, max_positions)
        self.input_embedding = InputEmbedding(self.embed_tokens, self.embed_positions, sizes.P_drop)
        self.max_target_positions = max_positions
        self.layers = nn.ModuleList(DecoderLayer(sizes) for _ in range(sizes.N))
        # only when on: post-norm checkpoints load
        self.layer_norm = nn.LayerNorm(sizes.d_model) if sizes.pre_norm else None
        self.alignment_layer = alignment_layer % sizes.N
        self.need_attn = False  # set by fairseq-generate --print-alignment (make_generation_fast_)
        if share_input_output_embed:
            self.output_projection = None
        else:
            self.output_projection = nn.Linear(sizes.d_model, len(dictionary), bias=False)
            nn.init.normal_(self.output_projection.weight, mean=0.0, std=sizes.d_model**-0.5)

    def forward(
        self,
        prev_output_tokens: Tensor,
        encoder_out: Optional[Dict[str, List[Any]]] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        features_only: bool = False,
        alignment_layer: Optional[int] = None,
        alignment_heads: Optional[int] = None,
        full_context_alignment: bool = False,
        need_attn: bool = False,
        return_all_attention: bool = False,
        **unused,
    ):
        """prev_output_tokens ``(B, T)`` → logits ``(B, T, V)`` (features ``(B, T, d_model)`` if ``features_only``)
        and ``extra``: ``{"attn": [(B, T, S)|None], "inner_states": […]}`` (see :meth:`extract_features`)."""
        x, extra = self.extract_features(
            prev_output_tokens,
            encoder_out,
            incremental_state,
            alignment_layer=alignment_layer,
            alignment_heads=alignment_heads,
            full_context_alignment=full_context_alignment,
            need_attn=need_attn,
            return_all_attention=return_all_attention,
        )
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(
        self,
        prev_output_tokens: Tensor,
        encoder_out: Optional[Dict[str, List[Any]]],
        incremental_state=None,
        alignment_layer: Optional[int] = None,
        alignment_heads: Optional[int] = None,
        full_context_alignment: bool = False,
        need_attn: bool = False,
        return_all_attention: bool = False,
        **unused,
    ):
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
        x = self.input_embedding(prev_output_tokens, positions, prefix_len)  # (B, T, d_model)

        memory = encoder_out["encoder_out"][0]  # (B, S, d_model)
        memory_mask = encoder_out["encoder_padding_mask"][0]  # (B, S), passed as it is (no .any(): no device sync)
        caches = self._layer_caches(incremental_state)
        align_at = self.alignment_layer if alignment_layer is None else alignment_layer % len(self.layers)
        want_attn = (
            need_attn
            or alignment_layer is not None
            or alignment_heads is not None
            or (self.need_attn and not self.training)
        )
        attn = None
        inner_states = [x]
        self_attention, cross_attention = [], []
        for i, layer in enumerate(self.layers):
            x, self_w, cross_w = layer(
                x,
                memory,
                memory_mask,
                cache=None if caches is None else caches[i],
                need_self_weights=return_all_attention,
                need_cross_weights=return_all_attention or (want_attn and i == align_at),
                causal=not full_context_alignment,
                self_padding_mask=self_padding_mask,
            )
            if want_attn and i == align_at:
                attn = cross_w[:, :alignment_heads].float().mean(dim=1)  # (B, T, S): averaged over heads
            self_attention.append(self_w)
            cross_attention.append(cross_w)
            inner_states.append(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)  # (B, T, d_model)
        extra = {"attn": [attn], "inner_states": inner_states}
        if return_all_attention:
            extra["self_attention"], extra["cross_attention"] = self_attention, cross_attention
        return x, extra

    def output_layer(self, features: Tensor) -> Tensor:
        """Pre-softmax linear transformation (§3.4): ``(B, T, d_model)`` → ``(B, T, V)``."""
        if self.output_projection is None:
            return F.linear(features, self.embed_tokens.weight)
        return self.output_projection(features)

    def pre_softmax_weight(self) -> Optional[Tensor]:
        """W ``(V, d_model)`` of the pre-softmax map when :meth:`output_layer` is that map alone, logits = features·Wᵀ
        (the shared embedding or the bias-free projection); None in a subclass with an output layer of its own. The
        chunked loss asks for it (it never builds the full logits)."""
        if type(self).output_layer is not VanillaTransformerDecoder.output_layer:
            return None
        return self.embed_tokens.weight if self.output_projection is None else self.output_projection.weight

    def _layer_caches(self, incremental_state) -> Optional[List[Dict[str, Dict[str, Tensor]]]]:
        """Per layer, the dict of cached keys/values ``{"self_attn": {…}, "cross_attn": {…}}``; None without a cache."""
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
        """fairseq's hook before generation; ``need_attn`` (``--print-alignment``) makes the alignment computed."""
        self.need_attn = need_attn

    def max_positions(self) -> int:
        return self.max_target_positions
