"""Peak memory of one training step, peak = static + max_tokens · a, and the flags that fit a memory budget.

static: every parameter's weights, gradients, fp32 master copies (``--fp16``/``--bf16``) and Adam's m and v
        (``PRECISIONS``), the positional tables and the chunked loss's chunk and fp32 ∂loss/∂W (:mod:`.output_layer`);
a:      the bytes one token (source and target side, padding included, since ``--max-tokens`` bounds
        B · max(S, T)) keeps alive at the peak: each layer's tensors saved for the backward pass, the dropout
        masks, LayerNorm and attention statistics, and the output layer's (:mod:`.output_layer`).
The counts in :func:`activation_terms` were read off the code (``modules/``, the criterion) and are checked against
the allocations the profiler records on the CPU (:mod:`.measure`); ``CALIBRATION`` holds the fitted scales.
"""

import math
from dataclasses import dataclass, field, fields
from typing import Dict, Optional

from ...modules.sizes import BASE, head_dims
from .output_layer import loss_bytes, output_layer_per_token

GiB = 2**30
PAPER_TOKENS_PER_UPDATE = 25_000  # §5.1: batches of ≈25,000 source and ≈25,000 target tokens
DEFAULT_FILL = 0.9  # real target tokens per batch / --max-tokens when no data is given (padding, partly full batches)
SAFETY_FRACTION, SAFETY_BYTES = 0.10, 1 * GiB  # kept free: 10 % (allocator fragmentation) + 1 GiB (CUDA context)
TOKEN_BYTES = 28  # per token: source, previous-output and target ids (int64), padding masks
KEYS = 32  # keys per sentence assumed where the attention kernel stores T_q × T_k weights (the CPU's bf16 training)
ACTIVATION_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # each precision's torch dtype, by name
ACTIVATION_DTYPE.update({f"memory-efficient-{p}": ACTIVATION_DTYPE[p] for p in ("fp16", "bf16")})

# bytes per parameter of each fairseq precision mode
PRECISIONS: Dict[str, Dict[str, int]] = {
    "fp32": dict(weights=4, gradients=4, master_weights=0, master_gradients=0, adam_state=8),
    # FP16Optimizer: half weights and gradients, fp32 copies of both for the update
    "fp16": dict(weights=2, gradients=2, master_weights=4, master_gradients=4, adam_state=8),
    "bf16": dict(weights=2, gradients=2, master_weights=4, master_gradients=4, adam_state=8),
    # MemoryEfficientFP16Optimizer: fp32 only inside the update, one parameter at a time
    "memory-efficient-fp16": dict(weights=2, gradients=2, master_weights=0, master_gradients=0, adam_state=8),
    "memory-efficient-bf16": dict(weights=2, gradients=2, master_weights=0, master_gradients=0, adam_state=8),
}
# the flags of vanilla_transformer the planner reads (scripts/fit-memory.py takes each, with the model's help text)
PLANNER_FLAGS = (
    "encoder_layers",
    "decoder_layers",
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "attention_key_dim",
    "attention_value_dim",
    "dropout",
    "encoder_normalize_before",
    "decoder_normalize_before",
)
# scales of the activation terms, fitted by measure.fit_scales to CPU profiler peaks
# (`python scripts/fit-memory.py --calibrate`: 1.000 / 1.000 / 1.000 for fp32 and fp16, 7 sizes each)
CALIBRATION = {"hidden": 1.0, "dropout_masks": 1.0, "output_layer": 1.0}


@dataclass(frozen=True)
class ModelSize:
    """The sizes that set the memory of a ``vanilla_transformer`` (paper symbols; defaults: the base model, ``BASE``).

    d_k and d_v left unset are the model's own default (``modules/sizes.py:head_dims``), resolved on construction;
    ``pre_norm_enc``/``pre_norm_dec``: a pre-norm side (``--{side}-normalize-before``), one more LayerNorm."""

    d_model: int = BASE.d_model
    d_ff: int = BASE.d_ff
    h: int = BASE.h
    N_enc: int = BASE.N
    N_dec: int = BASE.N
    vocab: int = 37_000  # §5.1: a shared source-target vocabulary of about 37,000 tokens
    embedding_matrices: int = 1  # V×d_model matrices: 1 --share-all-embeddings, 2 tied decoder only, 3 none
    dropout: float = BASE.P_drop
    d_k: Optional[int] = None
    d_v: Optional[int] = None
    max_positions: int = 1024
    chunked_loss: bool = True  # the criterion's --chunked-loss (auto: on for these models); False: --chunked-loss off
    loss_chunk_tokens: int = 0  # --loss-chunk-tokens (0: chosen from V)
    pre_norm_enc: bool = BASE.pre_norm
    pre_norm_dec: bool = BASE.pre_norm

    def __post_init__(self):
        d_k, d_v = head_dims(self.d_model, self.h, self.d_k, self.d_v)
        object.__setattr__(self, "d_k", d_k)  # frozen: resolved once, here
        object.__setattr__(self, "d_v", d_v)

    @property
    def hk(self) -> int:
        return self.h * self.d_k

    @property
    def hv(self) -> int:
        return self.h * self.d_v


def size_from_arch(arch: str, vocab: int = 37_000, share_all_embeddings: bool = True, **flags) -> ModelSize:
    """A registered ``vanilla_transformer*`` architecture, fairseq flag names in ``flags`` overriding its preset."""
    from ...models.config import side_sizes
    from ...models.vanilla_transformer import PRESETS, VanillaTransformerConfig

    if arch not in PRESETS:
        raise ValueError(f"--arch {arch}: the planner knows {', '.join(PRESETS)}")
    cfg = {f.name: f.default for f in fields(VanillaTransformerConfig)}
    cfg.update(PRESETS[arch])
    cfg.update({k: v for k, v in flags.items() if v is not None})
    enc, dec = side_sizes(cfg, "encoder"), side_sizes(cfg, "decoder")
    return ModelSize(
        d_model=enc.d_model,
        d_ff=enc.d_ff,
        h=enc.h,
        N_enc=enc.N,
        N_dec=dec.N,
        vocab=vocab,
        embedding_matrices=1 if share_all_embeddings else 3,
        dropout=cfg["dropout"],
        d_k=enc.d_k,
        d_v=enc.d_v,
        max_positions=cfg["max_source_positions"],
        pre_norm_enc=enc.pre_norm,
        pre_norm_dec=dec.pre_norm,
    )


def parameter_count(s: ModelSize) -> int:
    """P: embeddings + N_enc encoder layers + N_dec decoder layers + the final LayerNorm of each pre-norm side."""
    d = s.d_model
    attention = 2 * (d * s.hk + s.hk) + (d * s.hv + s.hv) + (s.hv * d + d)  # W_Q, W_K, W_V, W_O with biases
    ffn = d * s.d_ff + s.d_ff + s.d_ff * d + d  # W_1, b_1, W_2, b_2
    norm = 2 * d  # LayerNorm gain and bias
    encoder_layer = attention + ffn + 2 * norm
    decoder_layer = 2 * attention + ffn + 3 * norm
    layers = s.N_enc * encoder_layer + s.N_dec * decoder_layer
    return s.embedding_matrices * s.vocab * d + layers + (s.pre_norm_enc + s.pre_norm_dec) * norm  # final norms


def static_bytes(s: ModelSize, precision: str) -> Dict[str, int]:
    """Bytes that do not depend on the batch: each part of ``PRECISIONS`` times P, and the two sinusoid tables."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    P = parameter_count(s)
    parts = {name: P * per_param for name, per_param in PRECISIONS[precision].items()}
    parts["positional_tables"] = 2 * s.max_positions * s.d_model * PRECISIONS[precision]["weights"]
    return parts


def activation_terms(s: ModelSize, precision: str, device: str = "cuda", keys: int = KEYS) -> Dict[str, float]:
    """Bytes per token (both sides) alive at the start of the backward pass, by kind, scaled by ``CALIBRATION``.

    Saved per token: an encoder layer keeps its input, Q, K, V, the attention output, the two LayerNorm inputs and
    the first one's output (4·d_model + 2·h·d_k + 2·h·d_v) and the FFN's ReLU output (d_ff); a decoder layer keeps
    6·d_model + 4·h·d_k + 4·h·d_v + d_ff (self- and cross-attention; cross K, V per source token); the embedding
    stage keeps the encoder and decoder outputs (2·d_model); a pre-norm side's final LayerNorm keeps its input (d_model)
    and its statistics. Dropout masks: 2 per encoder layer, 3 per decoder
    layer, 1 per side; CPU kernels store them in the activations' dtype, CUDA kernels as bool. The output layer:
    :func:`.output_layer.output_layer_per_token`. Where ``fused_kernel_pays`` takes the plain formula for a training
    step (the CPU, bf16, up to 128 keys), each attention keeps its softmax weights and their masked copy,
    (B, h, T_q, T_k) each: 2·h·``keys`` values per query token, and no fused kernel's fp32 log-sum-exp.
    """
    import torch

    from ...modules.attention import fused_kernel_pays

    dtype = getattr(torch, ACTIVATION_DTYPE[precision])
    plain = not fused_kernel_pays(device, dtype, keys, keys, grad=True)
    act = 4 if precision == "fp32" else 2
    mask = act if device == "cpu" else 1
    stat = act if device == "cpu" else 4  # LayerNorm mean and 1/σ
    d = s.d_model
    hidden = s.N_enc * (4 * d + 2 * s.hk + 2 * s.hv + s.d_ff) + s.N_dec * (6 * d + 4 * s.hk + 4 * s.hv + s.d_ff)
    hidden += (2 + s.pre_norm_enc + s.pre_norm_dec) * d  # the stage's outputs, the final norms' inputs
    masks = (2 * s.N_enc + 3 * s.N_dec + 2) * d if s.dropout > 0 else 0
    attentions = s.N_enc + 2 * s.N_dec  # per query token: encoder self, decoder self and cross
    norms = 2 * s.N_enc + 3 * s.N_dec + s.pre_norm_enc + s.pre_norm_dec
    statistics = stat * 2 * norms + (0 if plain else 4 * s.h * attentions)  # + log-sum-exp
    return {
        "hidden": CALIBRATION["hidden"] * act * hidden,
        "dropout_masks": CALIBRATION["dropout_masks"] * mask * masks,
        "output_layer": CALIBRATION["output_layer"] * output_layer_per_token(s.vocab, d, act, s.chunked_loss),
        "statistics": statistics,
        "attention_weights": 2 * act * s.h * keys * attentions if plain else 0,
        "token_ids": TOKEN_BYTES,
    }


def bytes_per_token(s: ModelSize, precision: str, device: str = "cuda") -> float:
    """a, the slope of peak memory in --max-tokens."""
    return sum(activation_terms(s, precision, device).values())


def estimate_peak(s: ModelSize, precision: str, max_tokens: int, device: str = "cuda") -> float:
    """static + the chunked loss's fixed bytes + max_tokens · a, in bytes."""
    fixed = sum(static_bytes(s, precision).values()) + sum(loss_bytes(s, max_tokens).values())
    return fixed + max_tokens * bytes_per_token(s, precision, device)


def usable_bytes(memory_bytes: float) -> float:
    """The budget after the safety margin: 90 % of the memory, less 1 GiB."""
    return memory_bytes * (1 - SAFETY_FRACTION) - SAFETY_BYTES


@dataclass
class Plan:
    """What fits: the largest --max-tokens, the recommended --max-tokens/--update-freq and the breakdown."""

    size: ModelSize
    precision: str
    memory_bytes: float
    max_tokens_fit: int
    max_tokens: int
    update_freq: int
    fill: float
    gpus: int
    static: Dict[str, int] = field(default_factory=dict)
    per_token: Dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_update(self) -> float:
        return self.max_tokens * self.fill * self.update_freq * self.gpus

    @property
    def peak_bytes(self) -> float:
        return sum(self.static.values()) + self.max_tokens * sum(self.per_token.values())


def plan(
    s: ModelSize,
    precision: str,
    memory_bytes: float,
    device: str = "cuda",
    fill: float = DEFAULT_FILL,
    gpus: int = 1,
    tokens_per_update: int = PAPER_TOKENS_PER_UPDATE,
    max_tokens_fit: Optional[int] = None,
    granularity: int = 128,
) -> Plan:
    """The largest --max-tokens within :func:`usable_bytes` (or ``max_tokens_fit`` as measured on a GPU), then the
    fewest --update-freq that reach ``tokens_per_update`` target tokens, with --max-tokens evened out over them."""
    static = {**static_bytes(s, precision), **loss_bytes(s, 2**62)}  # a whole chunk
    per_token = activation_terms(s, precision, device)
    if max_tokens_fit is None:
        room = usable_bytes(memory_bytes) - sum(static.values())
        max_tokens_fit = int(room // sum(per_token.values()) // granularity * granularity) if room > 0 else 0
    if max_tokens_fit < granularity:
        need = (sum(static.values()) + granularity * sum(per_token.values())) / GiB
        raise ValueError(
            f"{memory_bytes / 1e9:.3g} GB ({memory_bytes / GiB:.3g} GiB, {max(usable_bytes(memory_bytes), 0) / GiB:.2f}"
            f" GiB usable) is too small: the {precision} model and {granularity} tokens need {need:.2f} GiB usable"
        )
    update_freq = max(1, math.ceil(tokens_per_update / (fill * max_tokens_fit * gpus)))
    even = math.ceil(tokens_per_update / (fill * update_freq * gpus) / granularity) * granularity
    fit = min(max_tokens_fit, even)
    return Plan(s, precision, memory_bytes, max_tokens_fit, fit, update_freq, fill, gpus, static, per_token)
