"""Memory of the output layer in a training step: the pre-softmax map (§3.4) and the label-smoothed loss (§5.4), on
the criterion's two paths, the full log-softmax (``--chunked-loss off``) and the chunked loss (the default).

Full path: the B·T·V logits and three fp32 B·T·V tensors (log-probabilities, their gradient, the fp32 logits'
gradient) are alive at the peak, (act + 12)·V bytes per token. Chunked path (``modules/chunked_cross_entropy.py``):
per token, the copy of the real tokens' hidden states and ∂loss/∂h (kept for the backward pass), act·d_model each,
and the real tokens' int64 targets, 8 bytes (the profiler's records at the peak, in the loss's forward pass); per step,
independent of the batch, one chunk of C tokens' fp32 logits and log-probabilities, 8 bytes per value (in half
precision too: the half logits are freed once copied to fp32, the fp32 gradient once rounded), and the fp32
accumulator of ∂loss/∂W, 4·V·d_model.
"""

from typing import Dict

from ...modules.chunked_cross_entropy import default_chunk_tokens

INDEX_BYTES = 8  # per real target token on the chunked path: its int64 target


def output_layer_per_token(V: int, d_model: int, act: int, chunked: bool) -> float:
    """Bytes per token (act: bytes per activation value) the output layer keeps alive at the peak."""
    return 2 * act * d_model + INDEX_BYTES if chunked else (act + 12) * V


def chunk_tokens(V: int, loss_chunk_tokens: int = 0) -> int:
    """C, the criterion's chunk: ``--loss-chunk-tokens``, or chosen from V when 0."""
    return loss_chunk_tokens or default_chunk_tokens(V)


def chunked_loss_bytes(V: int, d_model: int, tokens: int, loss_chunk_tokens: int = 0) -> Dict[str, float]:
    """Bytes of the chunked loss that do not grow with the batch: one chunk of min(C, tokens) tokens' logits and
    log-probabilities, and the fp32 accumulator of ∂loss/∂W ``(V, d_model)``."""
    C = min(chunk_tokens(V, loss_chunk_tokens), tokens)
    return {"loss_chunk": 8 * C * V, "loss_weight_gradient": 4 * V * d_model}


def loss_bytes(s, tokens: int) -> Dict[str, float]:
    """:func:`chunked_loss_bytes` of a planner ``ModelSize`` at ``tokens`` per batch; nothing on the full path."""
    return chunked_loss_bytes(s.vocab, s.d_model, tokens, s.loss_chunk_tokens) if s.chunked_loss else {}
