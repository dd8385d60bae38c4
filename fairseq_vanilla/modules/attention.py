"""Scaled dot-product attention, softmax(QKᵀ/√d_k)V (§3.2.1).

Pure functions, no fairseq. Tensors are batch-first: ``(B, h, T, d_k)``.
Masks use fairseq's convention: ``True`` marks a position that must get zero weight.
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def build_mask(key_padding_mask: Optional[Tensor], causal: bool, tq: int, tk: int, device) -> Optional[Tensor]:
    """Combine a key-padding mask ``(B, T_k)`` and a causal mask into one ``(B|1, 1, T_q, T_k)`` bool mask.

    The causal mask lets query ``i`` see keys ``j ≤ i + (T_k - T_q)``: with a cache of earlier keys the
    newest query sits at the end of the key sequence (§3.2.3, "preventing leftward information flow").
    """
    mask = None
    if causal:
        mask = torch.ones(tq, tk, dtype=torch.bool, device=device).triu(1 + tk - tq)  # (T_q, T_k)
        mask = mask[None, None]  # (1, 1, T_q, T_k)
    if key_padding_mask is not None:
        pad = key_padding_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, T_k)
        mask = pad if mask is None else (mask | pad)
    return mask


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> Tuple[Tensor, Tensor]:
    """softmax(QKᵀ/√d_k)V (§3.2.1), the plain formula; returns ``(output, weights)``.

    This is the reference the fast path is tested against. A row whose keys are all masked gets
    all-zero weights (and a zero output) instead of the NaN that softmax over ``-inf`` would give.
    Differs from the paper: optional dropout on the weights (fairseq's ``--attention-dropout``; 0 in the paper).
    """
    d_k = q.size(-1)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)  # (B, h, T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
    # no fp32 copy of the scores: torch's softmax sums half/bf16 inputs in fp32 itself (the same weights, fewer copies)
    weights = torch.softmax(scores, dim=-1)  # (B, h, T_q, T_k)
    if mask is not None:
        weights = weights.masked_fill(mask, 0.0)  # all-masked rows: 0, not uniform
    if dropout_p > 0.0 and training:
        weights_dropped = F.dropout(weights, p=dropout_p, training=True)
    else:
        weights_dropped = weights
    return torch.matmul(weights_dropped, v), weights  # (B, h, T_q, d_k)


# Key lengths up to which the plain formula beats torch's fused CPU kernel (measured on an AVX-512 EPYC, torch 2.13,
# d_k 64, 1 thread): with gradients in bf16 it was 3-10x slower than matmul + softmax up to 128 keys; in fp32 1.7x
# slower at 18 keys, level at 40-64; beyond that the fused kernel wins (it never builds the T_q x T_k scores).
CPU_PLAIN_MAX_KEYS_TRAINING_BF16 = 128
CPU_PLAIN_MAX_KEYS = 32


def fused_kernel_pays(device_type: str, dtype: torch.dtype, tq: int, tk: int, grad: bool) -> bool:
    """Whether torch's fused SDPA kernel is faster than the plain formula of §3.2.1 for these shapes (a speed rule).

    CUDA: always. CPU: not for a decoding step (one query); not for a bf16 step that needs gradients with at most
    ``CPU_PLAIN_MAX_KEYS_TRAINING_BF16`` keys; not without gradients (validation, scoring) at most
    ``CPU_PLAIN_MAX_KEYS`` keys. An fp32/fp16 step with gradients keeps the fused kernel: the plain formula stores
    the T_q × T_k weights for the backward pass (memory that the planner's per-token model does not count, and that
    ``tests/test_memory.py`` measures), and its fp32 gain did not show in a whole training step (0.96–0.99× fairseq's
    tokens/s with it, 1.01× without; BENCHMARKS.md).
    """
    if device_type != "cpu":
        return True
    if tq == 1:
        return False
    if grad:
        return not (dtype == torch.bfloat16 and tk <= CPU_PLAIN_MAX_KEYS_TRAINING_BF16)
    return tk > CPU_PLAIN_MAX_KEYS


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Optional[Tensor] = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
) -> Tensor:
    """softmax(QKᵀ/√d_k + M)V (§3.2.1) through ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels).

    A row whose keys are all masked gets uniform weights (finite), not the formula's zeros.
    """
    tq, tk = q.size(-2), k.size(-2)
    p = dropout_p if training else 0.0
    if key_padding_mask is None and (not causal or tq == 1):
        # no mask at all (a single decoding step sees every cached key)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, T_q, d_v)
    if key_padding_mask is None and tq == tk:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, h, T_q, d_v)
    mask = build_mask(key_padding_mask, causal, tq, tk, q.device)
    # SDPA's boolean masks mean "may attend"; an additive mask with the dtype's minimum keeps
    # all-masked rows finite (uniform weights) rather than NaN.
    bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(mask, torch.finfo(q.dtype).min)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)  # (B, h, T_q, d_v)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Optional[Tensor] = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
    need_weights: bool = False,
    fast: bool = True,
) -> Tuple[Tensor, Optional[Tensor]]:
    """softmax(QKᵀ/√d_k + M)V (§3.2.1) with M built from padding and causality; returns ``(output, weights|None)``.

    ``fast=True`` and ``need_weights=False`` take the faster of torch's fused kernel (:func:`fused_attention`) and
    the plain formula for this device and these shapes (:func:`fused_kernel_pays`) and return no weights;
    otherwise the plain formula (:func:`reference_attention`) runs and its weights are returned.
    """
    tq, tk = q.size(-2), k.size(-2)
    if fast and not need_weights:
        grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        if fused_kernel_pays(q.device.type, q.dtype, tq, tk, grad):
            return fused_attention(q, k, v, key_padding_mask, causal, dropout_p, training), None
        mask = build_mask(key_padding_mask, causal, tq, tk, q.device)
        return reference_attention(q, k, v, mask, dropout_p, training)[0], None
    mask = build_mask(key_padding_mask, causal, tq, tk, q.device)
    return reference_attention(q, k, v, mask, dropout_p, training)
