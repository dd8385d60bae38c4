"""Training FLOPs per target token (experiments/table/flops.py): by hand for small sizes, and against torch's
FlopCounterMode on the models fairseq builds from the same flags (one sentence, so no padding)."""

import importlib
import os
from argparse import Namespace

import pytest
import torch
from fairseq.models import ARCH_MODEL_REGISTRY
from torch.utils.flop_counter import FlopCounterMode

from fairseq_vanilla.experiments.table import flops as F
from fairseq_vanilla.models.config import SideSizes
from tests.test_model import make_task

attention_module = importlib.import_module(
    "fairseq_vanilla.modules.attention"
)  # the package exports a function of that name
S, T = 7, 5  # source and target tokens of the one sentence

TRANSFORMER = ["--arch", "vanilla_transformer", "--encoder-layers", "1", "--decoder-layers", "1"]
TRANSFORMER += ["--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2"]
LSTM = ["--arch", "lstm", "--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--decoder-out-embed-dim", "16"]
LSTM += ["--encoder-hidden-size", "16", "--decoder-hidden-size", "16", "--encoder-bidirectional"]
FCONV = ["--arch", "fconv", "--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--decoder-out-embed-dim", "16"]
FCONV += ["--encoder-layers", "[(24, 3)] * 2", "--decoder-layers", "[(24, 3), (32, 3)]"]


def test_transformer_by_hand():
    """1+1 layers, d_model 16, d_ff 32, h 2, d_k = d_v = 8, 34 types, 7 source and 5 target tokens. Encoder, per
    source token: projections 4·16·16 = 1024, attention 7·2·(8+8) = 224, FFN 2·16·32 = 1024, cross-attention's K
    and V 2·16·16 = 512 → 2784 × 7. Decoder, per target token: projections 1024, self-attention 5·32 = 160, cross Q
    and W^O 512, cross-attention 7·32 = 224, FFN 1024, output 16·34 = 544 → 3488 × 5."""
    side = SideSizes(N=1, d_model=16, d_ff=32, h=2, d_k=8, d_v=8)
    assert F.transformer_macs(side, side, 34, S, T) * T == pytest.approx(2784 * 7 + 3488 * 5)


def test_lstm_by_hand():
    """fairseq's lstm, 1+1 layers, embeddings 16, hidden 16, bidirectional encoder (output 32), 34 types. Encoder:
    2 directions · 4·16·(16+16) = 4096 a source token. Decoder a target token: the input-fed cell 4·16·(32+16) =
    3072, attention 16·32 + 2·7·32 + 48·16 = 1728, output 16·34 = 544; the bridge 2·32·16 = 1024 once."""
    args = F.parsed_flags(LSTM)
    assert F.lstm_macs(args, 34, S, T) * T == pytest.approx(4096 * 7 + (3072 + 1728 + 544) * 5 + 1024)
    no_attention = F.parsed_flags(LSTM + ["--decoder-attention", "0"])
    assert F.lstm_macs(no_attention, 34, S, T) * T == pytest.approx(4096 * 7 + (3072 + 544) * 5 + 1024)


def test_training_is_three_forwards_of_two_flops_per_multiply_add():
    corpus = {"vocab": 34, "source_tokens": S, "target_tokens": T}
    got = F.training_flops(LSTM, corpus)
    assert got["training_per_target_token"] == pytest.approx(6 * F.lstm_macs(F.parsed_flags(LSTM), 34, S, T))
    assert got["vocab"] == 34 and got["source_tokens"] == S


def conv_tbc_flops(x, weight, bias, pad, out_shape):
    """fairseq's ConvTBC (time, batch, channels): 2 FLOPs per multiply-add, every computed output position."""
    kernel, c_in, c_out = weight
    return 2 * out_shape[0] * out_shape[1] * kernel * c_in * c_out


def counted_forward(flags, monkeypatch):
    """FLOPs torch counts in one forward pass of the model built from ``flags`` on one S-token source sentence and
    its T-token target; the plain attention formula (the fused kernel's products are not counted), and the LSTM
    through ATen's own cell (oneDNN's RNN kernel is not counted)."""
    monkeypatch.setattr(attention_module, "fused_kernel_pays", lambda *a, **k: False)
    args = F.parsed_flags(flags)
    task = make_task()
    model = ARCH_MODEL_REGISTRY[args["arch"]].build_model(Namespace(**args), task)
    vocab = len(task.target_dictionary)
    torch.manual_seed(0)
    src, prev = torch.randint(4, vocab, (1, S)), torch.randint(4, vocab, (1, T))
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.conv_tbc: conv_tbc_flops})
    with torch.backends.mkldnn.flags(enabled=False), counter:
        model(src, torch.tensor([S]), prev)
    return counter.get_total_flops(), args, vocab


PRE_NORM = TRANSFORMER + ["--encoder-normalize-before", "--decoder-normalize-before", "--positional-encoding", "none"]


@pytest.mark.parametrize("flags", [TRANSFORMER, PRE_NORM, FCONV], ids=["transformer", "pre-norm", "fconv"])
def test_forward_count_agrees_with_torch(flags, monkeypatch):
    counted, args, vocab = counted_forward(flags, monkeypatch)
    assert counted == pytest.approx(2 * F.forward_macs(args, vocab, S, T) * T)


def test_lstm_count_agrees_with_torch_but_for_luong_elementwise_sums(monkeypatch):
    """fairseq's Luong attention scores and weighs the source by element-wise products and sums (``(a * b).sum``),
    which torch's counter does not see: 2 · 7 source tokens · 32 a target token, added by hand."""
    counted, args, vocab = counted_forward(LSTM, monkeypatch)
    assert counted + 2 * (2 * S * 32) * T == pytest.approx(2 * F.forward_macs(args, vocab, S, T) * T)


def test_pre_norm_and_no_positions_change_no_product():
    """Pre-norm moves the LayerNorms and adds one per stack, and no positions drops an addition: neither adds a matrix
    product, so the count is the post-norm base's (normalisation is not counted, for either)."""
    base, pre_norm = F.parsed_flags(TRANSFORMER), F.parsed_flags(PRE_NORM)
    assert pre_norm["encoder_normalize_before"] and pre_norm["positional_encoding"] == "none"
    assert F.forward_macs(pre_norm, 34, S, T) == F.forward_macs(base, 34, S, T)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="no FLOPs count for architecture 'transformer'"):
        F.forward_macs({"arch": "transformer"}, 34, S, T)


def test_corpus_lengths_and_fill_by_hand(tmp_path):
    """Three training pairs of 2/4/3 source and 3/1/2 target words: with </s>, means 4.0 and 3.0; the joined
    dictionary holds the 4 special symbols, 9 words, and fairseq's padding to a multiple of 8: 16. A result file of an
    architecture with no count is left as it was, and the table is still built; a reused row is not written."""
    import json

    from conftest import binarize, write_parallel

    raw = tmp_path / "raw"
    pairs = [("a b", "x y z"), ("a b c d", "x"), ("c d e", "y w")]
    for split in ("train", "valid", "test"):
        write_parallel(raw, split, pairs)
    binarize(raw, tmp_path / "prep" / "bin")
    corpus = F.corpus_lengths(str(tmp_path / "prep"))
    assert corpus == {"vocab": 16, "source_tokens": 4.0, "target_tokens": 3.0}
    results = tmp_path / "results"
    results.mkdir()
    stock = {"id": "tf", "seed": 1, "flags": ["--arch", "transformer"]}
    (results / "lstm-seed1.json").write_text(json.dumps({"id": "lstm", "seed": 1, "flags": LSTM}))
    (results / "tf-seed1.json").write_text(json.dumps(stock))
    found = {("lstm", 1): {"id": "lstm", "seed": 1, "flags": LSTM}, ("tf", 1): dict(stock)}
    found[("reused", 1)] = {"id": "reused", "seed": 1, "flags": LSTM}  # another table's file: not written
    assert F.fill_flops(found, str(results), str(tmp_path / "prep"), skip=("reused",)) == ["lstm"]
    assert found[("lstm", 1)]["flops"] == F.training_flops(LSTM, corpus) and "flops" not in found[("reused", 1)]
    assert sorted(os.listdir(results)) == ["lstm-seed1.json", "tf-seed1.json"]
    filled = json.loads((results / "lstm-seed1.json").read_text())["flops"]
    assert filled == F.training_flops(LSTM, corpus)
    assert filled["training_per_target_token"] == pytest.approx(6 * F.lstm_macs(F.parsed_flags(LSTM), 16, 4.0, 3.0))
    assert json.loads((results / "tf-seed1.json").read_text()) == stock
