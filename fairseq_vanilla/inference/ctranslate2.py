"""Export a trained ``vanilla_transformer`` checkpoint to a CTranslate2 model (C++ inference, float32 or int8).

The model is written through CTranslate2's Python spec API (``TransformerSpec``), tensor by tensor, the way
CTranslate2's own fairseq converter writes fairseq's ``transformer`` (``ctranslate2/converters/fairseq.py``), with
the same choices for the special tokens: vocabularies in fairseq's dictionary order with ``<pad>`` renamed
``<blank>``, ``</s>`` appended to every source (``add_source_eos``) and ``</s>`` as the decoder's first input
(``decoder_start_token``), as fairseq-generate does. What differs from fairseq's ``transformer``:

- self-attention keys, queries and values are three matrices here (``W_Q``, ``W_K``, ``W_V``); CTranslate2 wants them
  fused, ``[W_Q; W_K; W_V]`` for self-attention and ``[W_K; W_V]`` for cross-attention;
- the positional table is the paper's (§3.5) interleaved ``sin, cos, sin, …`` (fairseq: all sines, then all
  cosines) and our position 0 is the first real token (fairseq: ``padding_idx + 1``). CTranslate2 looks row ``t``
  up for its ``t``-th token, counted from 0 after the right padding it uses, so our table is written as it is.

The exported folder also holds what raw text needs (``pipeline.txt``, the BPE codes and vocabulary or the
sentencepiece model), so that :class:`fairseq_vanilla.inference.fast_translator.FastTranslator` translates raw text
from the folder alone. The checkpoint is read through the project's safe loader.
"""
import argparse
import os
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..fairseq_fixes.checkpoint_safety import safe_torch_load
from ..modules.positional_encoding import sinusoid_table
from ..pipeline import read_settings

SUPPORTED_MODELS = ("vanilla_transformer", "vanilla_transformer_align")
QUANTIZATIONS = ("float32", "int8", "int8_float32")
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, used by modules/residual.py
ASSET_FILES = {"bpe": ("codes",), "spm": ("spm.model",)}


class ExportError(ValueError):
    """A checkpoint or data folder that cannot be exported; the message names the file and the problem."""


def import_ctranslate2():
    """The ``ctranslate2`` module, or an error that says how to install it."""
    try:
        import ctranslate2
    except ImportError as e:
        raise ImportError("ctranslate2 is not installed: pip install -e '.[fast]' (scripts/setup.sh does)") from e
    return ctranslate2


def read_checkpoint(path: str) -> Tuple[Dict, Dict]:
    """(model config as a dict, state dict of numpy arrays) of a ``vanilla_transformer(_align)`` checkpoint."""
    import fairseq_vanilla  # noqa: F401  (registers our architectures)
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY

    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such checkpoint")
    state = safe_torch_load(path)
    cfg = (state.get("cfg") or {}).get("model") if isinstance(state, dict) else None
    if cfg is None and isinstance(state, dict) and state.get("args") is not None:
        cfg = vars(state["args"])
    if cfg is None or "model" not in state:
        raise ExportError(f"{path}: not a fairseq checkpoint (no model config or no weights)")
    cfg = dict(vars(cfg) if isinstance(cfg, argparse.Namespace) else cfg)  # a Namespace in older checkpoints
    task = (state.get("cfg") or {}).get("task") or {}
    for lang in ("source_lang", "target_lang"):  # the dictionaries' names (dict.SRC.txt)
        if cfg.get(lang) is None:
            cfg[lang] = task.get(lang) if isinstance(task, dict) else getattr(task, lang, None)
    arch = cfg.get("_name") or cfg.get("arch")
    model = ARCH_MODEL_NAME_REGISTRY.get(arch, arch)
    if model not in SUPPORTED_MODELS:
        raise ExportError(f"{path}: architecture {arch!r} (model {model!r}) cannot be exported by this converter; "
                          f"it exports {', '.join(SUPPORTED_MODELS)} (for fairseq's own models use "
                          "ct2-fairseq-converter)")
    weights = {k: v.float().numpy() for k, v in state["model"].items()}
    return cfg, weights


def read_dictionary(path: str) -> List[str]:
    """Symbols of a fairseq ``dict.*.txt`` in fairseq's order (``<s> <pad> </s> <unk>``, then the file's words),
    with ``<pad>`` written ``<blank>`` as CTranslate2's fairseq converter does."""
    from fairseq.data import Dictionary

    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing dictionary (the bin/ folder of the data the model was trained on)")
    return ["<blank>" if s == "<pad>" else s for s in Dictionary.load(path).symbols]


def _linear(spec, weights: Dict[str, np.ndarray], name: str) -> None:
    spec.weight = weights[f"{name}.weight"]
    if f"{name}.bias" in weights:
        spec.bias = weights[f"{name}.bias"]


def _fused(spec, weights: Dict[str, np.ndarray], names: List[str]) -> None:
    """Concatenate linear maps along the output dimension: ``[W_1; W_2; …]`` ``(sum d_out_i, d_in)``."""
    spec.weight = np.concatenate([weights[f"{n}.weight"] for n in names])  # (sum d_out, d_in)
    spec.bias = np.concatenate([weights[f"{n}.bias"] for n in names])  # (sum d_out,)


def _attention(spec, weights, prefix: str, residual: str, self_attention: bool, d_model: int, path: str) -> None:
    """Set a MultiHeadAttentionSpec from ``prefix.W_{Q,K,V,O}`` and its post-norm ``residual.layer_norm``."""
    d_q, d_v = weights[f"{prefix}.W_Q.weight"].shape[0], weights[f"{prefix}.W_V.weight"].shape[0]
    if d_q != d_model or d_v != d_model:
        raise ExportError(f"{path}: {prefix} projects to h·d_k={d_q}, h·d_v={d_v} instead of d_model={d_model} "
                          "(--attention-key-dim/--attention-value-dim): CTranslate2's Transformer needs "
                          "d_k = d_v = d_model/h")
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
    """Token embedding (scaled by √d_model, §3.4) and the positional table of §3.5, row t = our position t."""
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    embeddings.weight = weights[f"{side}.embed_tokens.embedding.weight"]
    spec.scale_embeddings = True  # × √d_model
    if cfg.get("positional_encoding", "sinusoidal") == "learned":
        spec.position_encodings.encodings = weights[f"{side}.embed_positions.weight"]  # (P, d_model)
    else:
        rows = int(cfg.get(f"max_{'source' if side == 'encoder' else 'target'}_positions") or 1024)
        spec.position_encodings.encodings = sinusoid_table(rows, d_model).numpy()  # (P, d_model), interleaved


def _size(cfg: Dict, name: str):
    value = cfg.get(name)
    return cfg.get("encoder_" + name[len("decoder_"):]) if value is None and name.startswith("decoder_") else value


def build_spec(cfg: Dict, weights: Dict[str, np.ndarray], src_vocab: List[str], tgt_vocab: List[str],
               path: str = "<checkpoint>"):
    """CTranslate2 ``TransformerSpec`` of a post-norm, ReLU ``vanilla_transformer`` (weights as numpy arrays)."""
    import_ctranslate2()
    from ctranslate2.specs import common_spec, transformer_spec

    d_model = int(cfg["encoder_embed_dim"])
    h_enc, h_dec = int(cfg["encoder_attention_heads"]), int(_size(cfg, "decoder_attention_heads"))
    if h_enc != h_dec:
        raise ExportError(f"{path}: encoder and decoder have {h_enc} and {h_dec} heads; CTranslate2's Transformer "
                          "has one head count")
    for side, vocab in (("encoder", src_vocab), ("decoder", tgt_vocab)):
        rows = weights[f"{side}.embed_tokens.embedding.weight"].shape[0]
        if rows != len(vocab):
            raise ExportError(f"{path}: the {side} embedding has {rows} rows but its dictionary has {len(vocab)} "
                              "symbols: the dictionary is not the one the model was trained with")
    n_enc, n_dec = int(cfg["encoder_layers"]), int(_size(cfg, "decoder_layers"))
    spec = transformer_spec.TransformerSpec.from_config(
        (n_enc, n_dec), h_enc, pre_norm=False, activation=common_spec.Activation.RELU,
        alignment_layer=int(cfg.get("alignment_layer", -1)), alignment_heads=int(cfg.get("alignment_heads") or 1))
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
    # pre-softmax linear map (§3.4): tied to the decoder's embedding unless the checkpoint has its own
    spec.decoder.projection.weight = weights.get("decoder.output_projection.weight",
                                                 weights["decoder.embed_tokens.embedding.weight"])
    spec.register_source_vocabulary(src_vocab)
    spec.register_target_vocabulary(tgt_vocab)
    spec.config.decoder_start_token = spec.config.eos_token  # fairseq-generate starts the decoder with </s>
    spec.config.add_source_eos = True  # fairseq's sources end with </s>
    spec.config.layer_norm_epsilon = LAYER_NORM_EPS
    return spec


def write_model(checkpoint: str, bin_dir: str, out: str, quantization: str = "float32",
                src: Optional[str] = None, tgt: Optional[str] = None) -> str:
    """Export ``checkpoint`` with the dictionaries of ``bin_dir`` (``dict.SRC.txt``, ``dict.TGT.txt``) into ``out``."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    cfg, weights = read_checkpoint(checkpoint)
    src = src or cfg.get("source_lang") or "en"
    tgt = tgt or cfg.get("target_lang") or "de"
    spec = build_spec(cfg, weights, read_dictionary(os.path.join(bin_dir, f"dict.{src}.txt")),
                      read_dictionary(os.path.join(bin_dir, f"dict.{tgt}.txt")), path=checkpoint)
    spec.validate()
    spec.optimize(quantization=quantization)
    tmp = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    spec.save(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def read_pipeline(data: str) -> Dict[str, str]:
    """``key=value`` lines of a prepared folder's ``bin/pipeline.txt`` (written by the prepare scripts)."""
    path = os.path.join(data, "bin", "pipeline.txt")
    if not os.path.isdir(data):
        raise ExportError(f"{data}: no such prepared folder (the --out of a scripts/prepare-*.sh)")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing; --data must be the --out folder of a scripts/prepare-*.sh")
    return read_settings(path)


def export(checkpoint: str, data: str, out: str, quantization: str = "float32") -> str:
    """Export ``checkpoint`` trained on the prepared folder ``data`` into ``out``, with the raw-text assets
    (``pipeline.txt``; ``bpe/codes`` and ``bpe/vocab.SRC``, or ``spm/spm.model``) copied beside the model."""
    settings = read_pipeline(data)
    src, tgt = settings.get("src", "en"), settings.get("tgt", "de")
    segmentation = settings.get("segmentation", "bpe")
    assets = [os.path.join(segmentation, name) for name in ASSET_FILES.get(segmentation, ())]
    for rel in assets:
        if not os.path.isfile(os.path.join(data, rel)):
            raise ExportError(f"{os.path.join(data, rel)}: missing (raw text cannot be segmented without it)")
    write_model(checkpoint, os.path.join(data, "bin"), out, quantization, src, tgt)
    vocab = os.path.join(segmentation, f"vocab.{src}")  # the prepare scripts' BPE vocabulary filter
    for rel in assets + ([vocab] if segmentation == "bpe" and os.path.isfile(os.path.join(data, vocab)) else []):
        shutil.copy(os.path.join(data, rel), os.path.join(out, os.path.basename(rel)))
    shutil.copy(os.path.join(data, "bin", "pipeline.txt"), os.path.join(out, "pipeline.txt"))
    return out
