"""The checkpoint's weights as a CTranslate2 TransformerSpec: embeddings, attention (fused Q/K/V), feed-forward and
layer norms of every layer, in the post-norm layout of §3.1 or, for ``--encoder-normalize-before`` and
``--decoder-normalize-before``, the pre-norm one (the same per-sub-layer norms, read on the way in, and each stack's
final ``layer_norm``)."""

import math
import struct
from typing import Dict, List, Tuple

import numpy as np

from ..models.config import pre_norm, side_sizes
from ..modules.positional_encoding import sinusoid_table

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, used by modules/residual.py


class ExportError(ValueError):
    """A checkpoint or data folder that cannot be exported; the message names the file and the problem."""


def import_ctranslate2():
    """The ``ctranslate2`` module, or an error that says how to install it."""
    try:
        import ctranslate2
    except ImportError as e:
        raise ImportError("ctranslate2 is not installed: pip install -e '.[fast]' (scripts/setup.sh does)") from e
    return ctranslate2


def _linear(spec, weights: Dict[str, np.ndarray], name: str) -> None:
    spec.weight = weights[f"{name}.weight"]
    if f"{name}.bias" in weights:
        spec.bias = weights[f"{name}.bias"]


def _fused(spec, weights: Dict[str, np.ndarray], names: List[str]) -> None:
    """Concatenate linear maps along the output dimension: ``[W_1; W_2; …]`` ``(sum d_out_i, d_in)``."""
    spec.weight = np.concatenate([weights[f"{n}.weight"] for n in names])  # (sum d_out, d_in)
    spec.bias = np.concatenate([weights[f"{n}.bias"] for n in names])  # (sum d_out,)


def _attention(spec, weights, prefix: str, residual: str, self_attention: bool, d_model: int, path: str) -> None:
    """Set a MultiHeadAttentionSpec from ``prefix.W_{Q,K,V,O}`` and its residual's ``residual.layer_norm``."""
    d_q, d_v = weights[f"{prefix}.W_Q.weight"].shape[0], weights[f"{prefix}.W_V.weight"].shape[0]
    if d_q != d_model or d_v != d_model:
        raise ExportError(
            f"{path}: {prefix} projects to h·d_k={d_q}, h·d_v={d_v} instead of d_model={d_model} "
            "(--attention-key-dim/--attention-value-dim): CTranslate2's Transformer needs "
            "d_k = d_v = d_model/h"
        )
    if self_attention:
        _fused(spec.linear[0], weights, [f"{prefix}.W_Q", f"{prefix}.W_K", f"{prefix}.W_V"])
    else:
        _linear(spec.linear[0], weights, f"{prefix}.W_Q")
        _fused(spec.linear[1], weights, [f"{prefix}.W_K", f"{prefix}.W_V"])
    _linear(spec.linear[-1], weights, f"{prefix}.W_O")
    _layer_norm(spec.layer_norm, weights, f"{residual}.layer_norm")


def _layer_norm(spec, weights, name: str) -> None:
    spec.gamma, spec.beta = weights[f"{name}.weight"], weights[f"{name}.bias"]


def _ffn(spec, weights, prefix: str) -> None:
    _linear(spec.linear_0, weights, f"{prefix}.ffn.W_1")
    _linear(spec.linear_1, weights, f"{prefix}.ffn.W_2")
    _layer_norm(spec.layer_norm, weights, f"{prefix}.ffn_residual.layer_norm")


def _inputs(spec, weights, side: str, cfg: Dict, d_model: int) -> None:
    """Token embedding (scaled by √d_model, §3.4) and the positional table of §3.5, row t = our position t (zeros for
    ``--positional-encoding none``: CTranslate2 always adds a table)."""
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    embeddings.weight = weights[f"{side}.embed_tokens.embedding.weight"]
    spec.scale_embeddings = math.sqrt(d_model)  # × √d_model, a float as CTranslate2's fairseq converter stores it
    kind = cfg.get("positional_encoding", "sinusoidal")
    rows = int(cfg.get(f"max_{'source' if side == 'encoder' else 'target'}_positions") or 1024)
    if kind == "learned":
        spec.position_encodings.encodings = weights[f"{side}.embed_positions.weight"]  # (P, d_model)
    elif kind == "none":
        spec.position_encodings.encodings = np.zeros((rows, d_model), dtype=np.float32)  # (P, d_model)
    else:
        spec.position_encodings.encodings = sinusoid_table(rows, d_model).numpy()  # (P, d_model), interleaved


def build_spec(
    cfg: Dict, weights: Dict[str, np.ndarray], src_vocab: List[str], tgt_vocab: List[str], path: str = "<checkpoint>"
):
    """CTranslate2 ``TransformerSpec`` of a post-norm or pre-norm, ReLU ``vanilla_transformer`` (weights as numpy
    arrays)."""
    import_ctranslate2()
    from ctranslate2.specs import common_spec, transformer_spec

    enc, dec = side_sizes(cfg, "encoder"), side_sizes(cfg, "decoder")
    d_model, h_enc, h_dec = int(enc.d_model), int(enc.h), int(dec.h)
    if h_enc != h_dec:
        raise ExportError(
            f"{path}: encoder and decoder have {h_enc} and {h_dec} heads; CTranslate2's Transformer has one head count"
        )
    for side, vocab in (("encoder", src_vocab), ("decoder", tgt_vocab)):
        rows = weights[f"{side}.embed_tokens.embedding.weight"].shape[0]
        if rows != len(vocab):
            raise ExportError(
                f"{path}: the {side} embedding has {rows} rows but its dictionary has {len(vocab)} "
                "symbols: the dictionary is not the one the model was trained with"
            )
    relu = common_spec.Activation.RELU
    spec = transformer_spec.TransformerSpec(  # each side post-norm or pre-norm (with a final norm) on its own
        transformer_spec.TransformerEncoderSpec(int(enc.N), h_enc, pre_norm=pre_norm(cfg, "encoder"), activation=relu),
        transformer_spec.TransformerDecoderSpec(
            int(dec.N),
            h_dec,
            pre_norm=pre_norm(cfg, "decoder"),
            activation=relu,
            alignment_layer=int(cfg.get("alignment_layer", -1)),
            alignment_heads=int(cfg.get("alignment_heads") or 1),
        ),
    )
    _inputs(spec.encoder, weights, "encoder", cfg, d_model)
    _inputs(spec.decoder, weights, "decoder", cfg, d_model)
    for i, layer in enumerate(spec.encoder.layer):
        p = f"encoder.layers.{i}"
        _attention(layer.self_attention, weights, f"{p}.self_attn", f"{p}.self_attn_residual", True, d_model, path)
        _ffn(layer.ffn, weights, p)
    for i, layer in enumerate(spec.decoder.layer):
        p = f"decoder.layers.{i}"
        _attention(layer.self_attention, weights, f"{p}.self_attn", f"{p}.self_attn_residual", True, d_model, path)
        _attention(layer.attention, weights, f"{p}.cross_attn", f"{p}.cross_attn_residual", False, d_model, path)
        _ffn(layer.ffn, weights, p)
    for side, stack in (("encoder", spec.encoder), ("decoder", spec.decoder)):
        if pre_norm(cfg, side):  # the pre-norm stack's final LayerNorm (Xiong et al. 2020)
            _layer_norm(stack.layer_norm, weights, f"{side}.layer_norm")
    # pre-softmax linear map (§3.4): tied to the decoder's embedding unless the checkpoint has its own
    spec.decoder.projection.weight = weights.get(
        "decoder.output_projection.weight", weights["decoder.embed_tokens.embedding.weight"]
    )
    spec.register_source_vocabulary(src_vocab)
    spec.register_target_vocabulary(tgt_vocab)
    spec.config.decoder_start_token = spec.config.eos_token  # fairseq-generate starts the decoder with </s>
    spec.config.add_source_eos = True  # fairseq's sources end with </s>
    spec.config.layer_norm_epsilon = LAYER_NORM_EPS
    return spec


def model_layout(path: str) -> Tuple[Dict[str, Tuple[Tuple[int, ...], int]], Dict[str, str]]:
    """The variables of a CTranslate2 ``model.bin`` (name → (shape, dtype code)) and its aliases (name → name),
    read from the file's layout (CTranslate2's ``ModelSpec._serialize``), without the weights' values."""
    with open(path, "rb") as f:

        def number(fmt: str) -> int:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def text() -> str:
            return f.read(number("<H")).decode("utf-8").rstrip("\0")

        number("<I"), text(), number("<I")  # binary version, spec name, spec revision
        variables = {}
        for _ in range(number("<I")):
            name, rank = text(), number("<B")
            shape = tuple(number("<I") for _ in range(rank))
            dtype, size = number("<B"), number("<I")
            f.seek(size, 1)
            variables[name] = (shape, dtype)
        aliases = {}
        for _ in range(number("<I")):
            alias = text()
            aliases[alias] = text()
    return variables, aliases
