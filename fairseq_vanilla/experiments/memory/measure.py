"""Measured peaks of one training step, the fit of the activation model to them, and what a data folder implies.

A step is what fairseq's trainer runs: the model's forward pass, the criterion's fp32 log-softmax and
label-smoothed loss, and the backward pass, on a batch of B = max_tokens // T sentences of T tokens on both sides.
Its peak above the weights and gradients is read, on the CPU, from the allocation records of ``torch.profiler``
(``profile_memory=True``: every allocation and free with its size, in time order), on a CUDA GPU from
``torch.cuda.max_memory_allocated``.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .output_layer import chunk_tokens, loss_bytes
from .planner import (
    ACTIVATION_DTYPE,
    CALIBRATION,
    KEYS,
    ModelSize,
    activation_terms,
    bytes_per_token,
    static_bytes,
    usable_bytes,
)

DTYPES = {precision: getattr(torch, name) for precision, name in ACTIVATION_DTYPE.items()}
SENTENCE_LENGTH = KEYS  # T of the measured batches: the keys per sentence the planner assumes
# small sizes that move every term of the activation model: (d_model, d_ff, h, N_enc, N_dec, vocab, dropout)
CALIBRATION_SIZES = [
    (64, 256, 4, 2, 2, 1000, 0.1),
    (128, 256, 4, 2, 2, 1000, 0.1),
    (64, 512, 4, 2, 2, 1000, 0.1),
    (64, 256, 4, 3, 2, 1000, 0.1),
    (64, 256, 4, 2, 3, 1000, 0.1),
    (64, 256, 4, 2, 2, 3000, 0.1),
    (64, 256, 8, 2, 2, 1000, 0.0),
]


def calibration_size(d_model, d_ff, h, N_enc, N_dec, vocab, dropout) -> ModelSize:
    """A calibration size on the full log-softmax path, where the output layer's term is large enough to be fitted
    (on the chunked path it is 2·act·d_model + 8 bytes a token beside the chunk's fixed bytes)."""
    return ModelSize(
        d_model=d_model,
        d_ff=d_ff,
        h=h,
        N_enc=N_enc,
        N_dec=N_dec,
        vocab=vocab,
        dropout=dropout,
        max_positions=256,
        chunked_loss=False,
    )


def build_model(s: ModelSize):
    """A ``vanilla_transformer`` of these sizes over a dictionary of ``s.vocab`` symbols, in training mode."""
    from types import SimpleNamespace

    from fairseq.data import Dictionary

    from ...models.vanilla_transformer import VanillaTransformerConfig, VanillaTransformerModel

    dictionary = Dictionary()
    for i in range(s.vocab - len(dictionary)):
        dictionary.add_symbol(f"w{i}")
    cfg = VanillaTransformerConfig(
        encoder_embed_dim=s.d_model,
        encoder_ffn_embed_dim=s.d_ff,
        encoder_attention_heads=s.h,
        encoder_layers=s.N_enc,
        decoder_layers=s.N_dec,
        dropout=s.dropout,
        attention_key_dim=s.d_k,
        attention_value_dim=s.d_v,
        share_all_embeddings=s.embedding_matrices == 1,
        share_decoder_input_output_embed=s.embedding_matrices == 2,
        max_source_positions=s.max_positions,
        max_target_positions=s.max_positions,
        encoder_normalize_before=s.pre_norm_enc,
        decoder_normalize_before=s.pre_norm_dec,
    )
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return VanillaTransformerModel.build_model(cfg, task).train()


def training_step(model, tokens: int, sentence_length: int = SENTENCE_LENGTH, label_smoothing: float = 0.1, chunk=None):
    """Forward, the criterion's label-smoothed loss, backward; returns the loss. With ``chunk`` (tokens) the loss is
    the chunked one over the real target tokens, as the criterion's default; without, the full fp32 log-softmax."""
    from ...criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss, pre_softmax_weight
    from ...modules.chunked_cross_entropy import chunked_label_smoothed_cross_entropy

    vocab, device = model.decoder.embed_tokens.weight.shape[0], model.decoder.embed_tokens.weight.device
    batch = max(1, tokens // sentence_length)
    src, prev, target = torch.randint(4, vocab, (3, batch, sentence_length), device=device)  # each (B, T)
    if chunk:
        features, _ = model(src, None, prev, features_only=True)  # (B, T, d_model)
        keep = target.ne(1)  # (B, T)
        h, W = features[keep], pre_softmax_weight(model)  # (N, d_model), (V, d_model)
        loss, _, _ = chunked_label_smoothed_cross_entropy(h, W, target[keep], label_smoothing, chunk)
    else:
        net_output = model(src, None, prev)
        lprobs = model.get_normalized_probs(net_output, log_probs=True).view(-1, vocab)  # (B·T, V), fp32
        loss, _ = label_smoothed_nll_loss(lprobs, target.reshape(-1), label_smoothing, ignore_index=1)
    loss.backward()
    return loss.detach()


def step_chunk(s: ModelSize) -> Optional[int]:
    """The criterion's chunk for this size, or None on the full path (``--chunked-loss off``)."""
    return chunk_tokens(s.vocab, s.loss_chunk_tokens) if s.chunked_loss else None


def estimated_activations(s: ModelSize, precision: str, tokens: int, device: str = "cpu") -> float:
    """The planner's bytes above the static ones for one step of ``tokens``: tokens · a and the chunked loss's."""
    fixed = loss_bytes(s, tokens)
    return tokens * bytes_per_token(s, precision, device) + sum(fixed.values())


def profiler_peak(prof) -> int:
    """Highest running sum of the profiler's allocation records (bytes allocated minus bytes freed, in time order)."""
    from torch._C._profiler import _EventType

    records, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            records.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    running = peak = 0
    for _, size in sorted(records):
        running += size
        peak = max(peak, running)
    return peak


def measure_peak(s: ModelSize, precision: str, tokens: int, device: str = "cpu", model=None) -> int:
    """Peak bytes of one training step above the weights and gradients (which exist from a first step on)."""
    if model is None:
        torch.manual_seed(0)
        model = build_model(s).to(device=device, dtype=DTYPES[precision])
        training_step(model, min(tokens, 4 * SENTENCE_LENGTH), chunk=step_chunk(s))  # allocate the gradients
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        training_step(model, tokens, chunk=step_chunk(s))
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        training_step(model, tokens, chunk=step_chunk(s))
    return profiler_peak(prof)


def fit_scales(points: Sequence[Tuple[ModelSize, str, str, int, int]]) -> Dict[str, float]:
    """Least-squares scales of the hidden, dropout-mask and output-layer terms from (size, precision, device,
    tokens, measured bytes) points; the statistics and token-id terms are taken as counted."""
    rows, rhs = [], []
    for s, precision, device, tokens, measured in points:
        terms = activation_terms(s, precision, device)
        unscaled = [tokens * terms[k] / CALIBRATION[k] for k in CALIBRATION]
        rows.append(unscaled)
        fixed = sum(loss_bytes(s, tokens).values())
        rhs.append(measured - fixed - tokens * (terms["statistics"] + terms["attention_weights"] + terms["token_ids"]))
    solution = np.linalg.lstsq(np.array(rows), np.array(rhs, dtype=float), rcond=None)[0]
    return dict(zip(CALIBRATION, map(float, solution)))


def calibrate(
    precision: str = "fp32", device: str = "cpu", tokens: int = 512, sizes: Optional[Sequence[tuple]] = None
) -> Tuple[Dict[str, float], List[Tuple[ModelSize, int, float]]]:
    """Measure the calibration sizes, fit the scales; returns (scales, [(size, measured, estimated), …])."""
    measured = []
    for args in sizes or CALIBRATION_SIZES:
        s = calibration_size(*args)
        measured.append((s, measure_peak(s, precision, tokens, device)))
    scales = fit_scales([(s, precision, device, tokens, m) for s, m in measured])
    return scales, [(s, m, estimated_activations(s, precision, tokens, device)) for s, m in measured]


def largest_fitting_tokens(
    s: ModelSize, precision: str, memory_bytes: float, granularity: int = 256
) -> Tuple[int, List[Tuple[int, Optional[int], float]]]:
    """On the GPU: the largest --max-tokens (a multiple of ``granularity``) whose measured step peak plus the static
    bytes fits :func:`usable_bytes`, by doubling then bisection; also every probe (tokens, measured|None, estimated)."""
    static = sum(static_bytes(s, precision).values())
    budget = usable_bytes(memory_bytes)
    torch.manual_seed(0)
    model = build_model(s).to(device="cuda", dtype=DTYPES[precision])
    training_step(model, 4 * SENTENCE_LENGTH, chunk=step_chunk(s))
    probes = []

    def fits(tokens: int) -> bool:
        try:
            measured = measure_peak(s, precision, tokens, "cuda", model)
        except torch.cuda.OutOfMemoryError:
            measured = None
        torch.cuda.empty_cache()
        probes.append((tokens, measured, estimated_activations(s, precision, tokens, "cuda")))
        return measured is not None and static + measured <= budget

    low, high = 0, granularity
    while fits(high):
        low, high = high, 2 * high
    while high - low > granularity:
        middle = (low + high) // 2 // granularity * granularity
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low, probes
