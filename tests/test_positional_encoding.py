"""§3.5's sinusoids, the learned alternative (Table 3 E), and positions under left padding."""

import math

import pytest
import torch

from fairseq_vanilla.modules import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    positions_from_padding,
    sinusoid_table,
)


@pytest.mark.parametrize("pos,col", [(0, 0), (0, 1), (1, 0), (1, 1), (7, 4), (7, 5), (50, 14), (50, 15), (3, 2)])
def test_sinusoid_matches_paper_formula(pos, col):
    d_model = 16
    i = col // 2
    angle = pos / (10000 ** (2 * i / d_model))
    expected = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    assert float(sinusoid_table(64, d_model)[pos, col]) == pytest.approx(expected, abs=1e-6)


def test_hand_values():
    pe = sinusoid_table(3, 4)
    # pos 1: sin(1), cos(1), sin(1/100), cos(1/100)
    assert pe[1].tolist() == pytest.approx([0.841471, 0.540302, 0.0099998, 0.99995], abs=1e-5)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_positions_skip_left_padding_and_table_grows():
    pad = 1
    tokens = torch.tensor([[1, 1, 5, 6, 2], [7, 8, 9, 10, 2]])
    assert positions_from_padding(tokens, pad).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    enc = SinusoidalPositionalEncoding(6, max_positions=4)
    out = enc(torch.tensor([[0, 9]]), seq_len=10)  # the last position of a 10-token prefix
    torch.testing.assert_close(out[0, 1], sinusoid_table(10, 6)[9])


def test_learned_encoding_rejects_positions_beyond_table():
    enc = LearnedPositionalEncoding(4, max_positions=3)
    assert enc(torch.tensor([[0, 2]])).shape == (1, 2, 4)
    with pytest.raises(ValueError, match="exceeds the learned table"):
        enc(torch.tensor([[3]]), seq_len=4)


def test_embedding_scaled_by_sqrt_d_model():
    emb = TokenEmbedding(10, 16, padding_idx=1)
    tok = torch.tensor([[3, 1]])
    torch.testing.assert_close(emb(tok)[0, 0], emb.embedding.weight[3] * 4.0)
    assert torch.all(emb(tok)[0, 1] == 0)


def test_input_embedding_adds_positions_and_owns_no_parameters():
    """Dropout(E·√d_model + PE) (§3.4, §3.5, §5.4); the tables stay the owner's (saved under its names), and the
    dropout follows the owner's train()/eval()."""
    from torch import nn

    from fairseq_vanilla.modules import InputEmbedding

    owner = nn.Module()
    owner.embed_tokens, owner.embed_positions = TokenEmbedding(10, 16, padding_idx=1), SinusoidalPositionalEncoding(16)
    owner.input_embedding = InputEmbedding(owner.embed_tokens, owner.embed_positions, dropout=0.5)
    assert list(owner.state_dict()) == ["embed_tokens.embedding.weight"]  # the sinusoid table is not saved
    assert list(owner.input_embedding.parameters()) == []
    tokens, positions = torch.tensor([[3, 4, 5]]), torch.tensor([[0, 1, 2]])
    owner.eval()
    expected = owner.embed_tokens.embedding.weight[[3, 4, 5]] * 4.0 + sinusoid_table(3, 16)  # (3, d_model)
    torch.testing.assert_close(owner.input_embedding(tokens, positions)[0], expected)
    # one step of incremental decoding: the newest token at its position, with the prefix's length
    torch.testing.assert_close(owner.input_embedding(tokens[:, -1:], positions[:, -1:], 3)[0], expected[-1:])
    owner.train()
    torch.manual_seed(0)
    assert (owner.input_embedding(tokens, positions) == 0).any()  # dropout p=0.5 on 48 values
