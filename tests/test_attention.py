"""softmax(QKᵀ/√d_k)V (§3.2.1) and multi-head attention (§3.2.2) against naive loops and hand-made masks."""

import math

import pytest
import torch

from fairseq_vanilla.modules import MultiHeadAttention, attention, build_mask, reference_attention


def naive_attention(q, k, v, masked=None):
    """Element by element: w_ij = exp(q_i·k_j/√d) / Σ_j' exp(…) over unmasked j; out_i = Σ_j w_ij v_j."""
    B, H, Tq, d = q.shape
    Tk = k.shape[2]
    out = torch.zeros(B, H, Tq, v.shape[-1], dtype=torch.float64)
    weights = torch.zeros(B, H, Tq, Tk, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(Tq):
                scores = []
                for j in range(Tk):
                    if masked is not None and masked(b, i, j):
                        scores.append(None)
                    else:
                        scores.append(sum(float(q[b, h, i, c]) * float(k[b, h, j, c]) for c in range(d)) / math.sqrt(d))
                finite = [s for s in scores if s is not None]
                if not finite:
                    continue
                m = max(finite)
                z = sum(math.exp(s - m) for s in finite)
                for j, s in enumerate(scores):
                    if s is not None:
                        weights[b, h, i, j] = math.exp(s - m) / z
                out[b, h, i] = sum(weights[b, h, i, j] * v[b, h, j].double() for j in range(Tk))
    return out, weights


def test_formula_matches_naive_loops():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 2, 3, 4), torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4)
    out, w = reference_attention(q, k, v)
    ref_out, ref_w = naive_attention(q, k, v)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=1e-5)


def test_hand_computed_two_keys():
    # q = [1, 0], keys [1, 0] and [0, 1], d_k = 2: scores 1/√2 and 0 → weights σ(1/√2), 1-σ(1/√2)
    q = torch.tensor([[[[1.0, 0.0]]]])
    k = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    v = torch.tensor([[[[10.0, 0.0], [0.0, 10.0]]]])
    out, w = reference_attention(q, k, v)
    w0 = 1.0 / (1.0 + math.exp(-1.0 / math.sqrt(2.0)))  # 0.669761…
    assert w[0, 0, 0].tolist() == pytest.approx([w0, 1 - w0], abs=1e-6)
    assert out[0, 0, 0].tolist() == pytest.approx([10 * w0, 10 * (1 - w0)], abs=1e-5)


def test_causal_and_padding_get_zero_weight():
    torch.manual_seed(1)
    B, H, T = 2, 3, 5
    q, k, v = (torch.randn(B, H, T, 8) for _ in range(3))
    pad = torch.tensor([[False] * 5, [True, True, False, False, False]])  # row 1 left-padded by 2
    mask = build_mask(pad, causal=True, tq=T, tk=T, device=q.device)
    out, w = reference_attention(q, k, v, mask)
    for b in range(B):
        for i in range(T):
            for j in range(T):
                if j > i or pad[b, j]:
                    assert torch.all(w[b, :, i, j] == 0), (b, i, j)
    ref_out, ref_w = naive_attention(q, k, v, masked=lambda b, i, j: j > i or bool(pad[b, j]))
    torch.testing.assert_close(w.double(), ref_w, atol=1e-6, rtol=1e-5)
    # rows with at least one visible key sum to one
    visible = ref_w.sum(-1) > 0
    torch.testing.assert_close(w.sum(-1)[visible], torch.ones(int(visible.sum())), atol=1e-6, rtol=0)


def test_all_padding_row_is_zero_not_nan():
    q, k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    pad = torch.ones(1, 3, dtype=torch.bool)
    out, w = attention(q, k, v, key_padding_mask=pad, need_weights=True)
    assert torch.all(w == 0) and torch.all(out == 0)
    fast, _ = attention(q, k, v, key_padding_mask=pad)
    assert torch.isfinite(fast).all()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_fast_path_equals_formula(causal, padded):
    torch.manual_seed(2)
    q, k, v = (torch.randn(3, 4, 6, 16) for _ in range(3))
    pad = torch.zeros(3, 6, dtype=torch.bool)
    if padded:
        pad[1, :2] = True
        pad[2, -1] = True
    fast, none = attention(q, k, v, key_padding_mask=pad if padded else None, causal=causal)
    slow, w = attention(q, k, v, key_padding_mask=pad if padded else None, causal=causal, need_weights=True)
    assert none is None and w is not None
    # rows that see no key at all (causal + left padding) are zero in the formula, finite in the kernel
    visible = w.sum(-1) > 0  # (B, h, T_q)
    assert int(visible.sum()) >= 3 * 4 * 6 - 4 * 2
    torch.testing.assert_close(fast[visible], slow[visible], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(fast).all()


def test_multi_head_is_concat_of_heads_times_W_O():
    """MultiHead = Concat(head_1..head_h) W^O with head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V), per head by hand."""
    torch.manual_seed(3)
    d_model, h = 8, 2
    mha = MultiHeadAttention(d_model, h, d_k=d_model // h, d_v=d_model // h).eval()
    x, mem = torch.randn(2, 3, d_model), torch.randn(2, 4, d_model)
    out, w = mha(x, mem, need_weights=True)
    d_k = d_model // h
    heads = []
    for i in range(h):
        sl = slice(i * d_k, (i + 1) * d_k)
        Q = x @ mha.W_Q.weight[sl].T + mha.W_Q.bias[sl]
        K = mem @ mha.W_K.weight[sl].T + mha.W_K.bias[sl]
        V = mem @ mha.W_V.weight[sl].T + mha.W_V.bias[sl]
        A = torch.softmax(Q @ K.transpose(1, 2) / math.sqrt(d_k), dim=-1)
        heads.append(A @ V)
    expected = torch.cat(heads, dim=-1) @ mha.W_O.weight.T + mha.W_O.bias
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert w.shape == (2, h, 3, 4)
