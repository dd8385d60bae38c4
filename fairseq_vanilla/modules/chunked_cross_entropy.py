"""Label-smoothed cross-entropy from the decoder's last hidden states and the pre-softmax weight (§3.4, §5.4), chunk
by chunk, so that the (N × V) logits, their log-softmax and their gradient never exist whole.

Plain PyTorch (no fairseq import). Memory: one chunk's fp32 logits and log-probabilities (chunk × V × 4 B each), plus
the gradients kept for the backward pass, N × d_model and V × d_model, in place of the three or four N × V tensors of
the log-softmax path.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

LOGITS_BUDGET_BYTES = 256 * 2**20  # one chunk's fp32 logits, chunk × V × 4 B, when the chunk is not given


def default_chunk_tokens(V: int, budget_bytes: int = LOGITS_BUDGET_BYTES) -> int:
    """Tokens per chunk whose fp32 logits, chunk × V × 4 B, fit ``budget_bytes`` (at least one token)."""
    return max(1, budget_bytes // (4 * V))


class ChunkedLabelSmoothedCrossEntropy(torch.autograd.Function):
    """H(q, softmax(h·Wᵀ)) summed over tokens, chunk by chunk (§5.4; Wijmans et al. 2024, Cut Cross-Entropy).

    q = (1-ε)·onehot(y) + ε/V; per token, loss = (1-ε)·(-log p_y) + (ε/V)·Σ_v(-log p_v) and nll = -log p_y, as
    :func:`fairseq_vanilla.criterions.label_smoothed_nll_loss` computes them from the full log-probabilities.
    Differs from Cut Cross-Entropy: the gradients are computed in the forward pass and kept (no logits recomputed in
    the backward pass, no gradient entries skipped), with plain PyTorch operations instead of a fused kernel.

    The forward pass computes, per chunk of C tokens, logits = h_c·Wᵀ in the inputs' dtype (the matrix product
    accumulates in fp32, as the model's own output layer does), then the log-softmax and the smoothing in fp32, and
    in the same pass the gradients ∂loss/∂logits = softmax − q, ∂loss/∂h_c = (softmax − q)·W and
    ∂loss/∂W = Σ_c (softmax − q)ᵀ·h_c (accumulated in fp32). The backward pass only scales them by grad_output; the
    gradients come back in the inputs' dtypes. The nll and the correct-token count are returned without a gradient
    (logged, not trained on; with ε = 0 the loss is the nll).
    """

    @staticmethod
    def forward(
        ctx,
        h: Tensor,
        W: Tensor,
        target: Tensor,
        epsilon: float,
        chunk_tokens: int,
        grad_h_needed: bool,
        grad_W_needed: bool,
        count_correct: bool,
    ):
        N, d_model = h.shape
        V = W.size(0)
        acc = torch.promote_types(h.dtype, torch.float32)  # fp32 for fp32, bf16 and fp16 inputs
        nll_sum = torch.zeros((), dtype=acc, device=h.device)
        smooth_sum = torch.zeros((), dtype=acc, device=h.device)
        n_correct = torch.zeros((), dtype=torch.long, device=h.device)
        grad_h = torch.empty_like(h) if grad_h_needed else None  # (N, d_model)
        grad_W = torch.zeros(V, d_model, dtype=acc, device=W.device) if grad_W_needed else None  # (V, d_model)
        for start in range(0, N, chunk_tokens):
            end = min(N, start + chunk_tokens)
            h_c, y_c = h[start:end], target[start:end]  # (C, d_model), (C,)
            lprobs = torch.log_softmax((h_c @ W.t()).to(acc), dim=-1)  # (C, V), fp32
            nll_sum -= lprobs.gather(1, y_c.unsqueeze(1)).sum()
            if epsilon > 0:
                smooth_sum -= lprobs.sum()
            if count_correct:
                n_correct += lprobs.argmax(dim=-1).eq(y_c).sum()
            if grad_h is None and grad_W is None:
                del lprobs  # freed before the next chunk's logits exist
                continue
            g = lprobs.exp_()  # (C, V): softmax, in place of the log-probabilities
            del lprobs
            g.scatter_add_(1, y_c.unsqueeze(1), g.new_full((end - start, 1), -(1.0 - epsilon)))  # − (1-ε)·onehot
            if epsilon > 0:
                g.sub_(epsilon / V)  # − ε/V: g = softmax − q
            g = g.to(h.dtype)  # (C, V): rounded as the log-softmax path's logits gradient is (no copy in fp32)
            if grad_h is not None:
                torch.mm(g, W, out=grad_h[start:end])  # (C, d_model)
            if grad_W is not None:
                grad_W.addmm_(g.t().to(acc), h_c.to(acc))  # (V, d_model), summed over the chunks in fp32
            del g  # at most two (C, V) tensors at a time: freed before the next chunk's logits exist
        loss = (1.0 - epsilon) * nll_sum + (epsilon / V) * smooth_sum
        ctx.save_for_backward(grad_h, None if grad_W is None else grad_W.to(W.dtype))
        ctx.mark_non_differentiable(nll_sum, n_correct)
        return loss, nll_sum, n_correct

    @staticmethod
    def backward(ctx, grad_loss: Tensor, grad_nll: Optional[Tensor], grad_correct: Optional[Tensor]):
        grad_h, grad_W = ctx.saved_tensors
        grad_h = None if grad_h is None else grad_h * grad_loss.to(grad_h.dtype)
        grad_W = None if grad_W is None else grad_W * grad_loss.to(grad_W.dtype)
        return grad_h, grad_W, None, None, None, None, None, None


def chunked_label_smoothed_cross_entropy(
    h: Tensor, W: Tensor, target: Tensor, epsilon: float, chunk_tokens: int, count_correct: bool = False
) -> Tuple[Tensor, Tensor, Tensor]:
    """(loss, nll, n_correct) summed over N tokens from h ``(N, d_model)``, W ``(V, d_model)``, target ``(N,)``.

    Only real tokens are passed (no padding to ignore); ``n_correct`` counts argmax_v p_v = y (0 unless
    ``count_correct``). The gradients are computed for whichever of h and W require one, when grad mode is on."""
    if h.dim() != 2 or W.dim() != 2 or h.size(1) != W.size(1):
        raise ValueError(f"h (N, d_model) and W (V, d_model) expected, got {tuple(h.shape)} and {tuple(W.shape)}")
    if target.shape != h.shape[:1]:
        raise ValueError(f"target (N,) = ({h.size(0)},) expected, got {tuple(target.shape)}")
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be ≥ 1, got {chunk_tokens}")
    grad = torch.is_grad_enabled()
    return ChunkedLabelSmoothedCrossEntropy.apply(
        h,
        W,
        target,
        float(epsilon),
        int(chunk_tokens),
        grad and h.requires_grad,
        grad and W.requires_grad,
        count_correct,
    )
