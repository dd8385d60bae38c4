"""The LSTM written out (modules/lstm.py), the vanilla_lstm_classifier's readouts under padding, and the model through
the stock fairseq-train and fairseq-validate."""

import math

import pytest
import torch
from fairseq.data import Dictionary
from test_imdb import PREPARE, make_aclimdb, run

from conftest import USER_DIR, fairseq, validate_classifier
from fairseq_vanilla.models.vanilla_lstm_classifier import VanillaLSTMClassifier
from fairseq_vanilla.modules.lstm import StackedLSTM, lstm_cell, lstm_layer


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_the_backward_of_a_layer_takes_its_steps_apart_once():
    """The per-step input gates come from one unbind of the (B, T, 4H) product (one backward node, which stacks the
    T gradients), not from T indexings, each of whose backward would fill a zero (B, T, 4H) gradient: O(T²)."""
    layer = StackedLSTM(3, 4, 1).layers[0]
    out, _ = layer(torch.randn(2, 50, 3, requires_grad=True))
    kinds, seen, todo = [], set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        kinds.append(type(node).__name__)
        todo.extend(next_fn for next_fn, _ in node.next_functions)
    assert kinds.count("UnbindBackward0") == 1
    assert "SelectBackward0" not in kinds


def test_lstm_cell_one_step_against_hand_computed_values():
    # H = 1, E = 1: gate pre-activations W x + b given directly, U = (u_i, u_f, u_g, u_o)
    gates_x = torch.tensor([[0.5, -1.0, 2.0, 0.25]])  # i, f, g, o
    weight_hh = torch.tensor([[0.1], [0.2], [-0.3], [0.4]])  # (4H, H)
    h, c = torch.tensor([[0.5]]), torch.tensor([[-2.0]])
    h1, c1 = lstm_cell(gates_x, h, c, weight_hh)
    i, f = sigmoid(0.5 + 0.05), sigmoid(-1.0 + 0.1)
    g, o = math.tanh(2.0 - 0.15), sigmoid(0.25 + 0.2)
    c_expected = f * -2.0 + i * g  # 0.289050 · (-2) + 0.634136 · 0.951746 = 0.025435
    assert c1.item() == pytest.approx(c_expected, abs=1e-6)
    assert h1.item() == pytest.approx(o * math.tanh(c_expected), abs=1e-6)
    assert (c1.item(), h1.item()) == pytest.approx((0.025435, 0.015528), abs=1e-6)  # 0.610639 · tanh(0.025435)


def test_stacked_lstm_equals_torch_lstm_with_the_same_weights():
    torch.manual_seed(0)
    reference = torch.nn.LSTM(6, 5, num_layers=3, batch_first=True)
    ours = StackedLSTM(6, 5, 3)
    with torch.no_grad():
        for n, layer in enumerate(ours.layers):
            layer.weight_ih.copy_(getattr(reference, f"weight_ih_l{n}"))
            layer.weight_hh.copy_(getattr(reference, f"weight_hh_l{n}"))
            layer.bias.copy_(getattr(reference, f"bias_ih_l{n}") + getattr(reference, f"bias_hh_l{n}"))
    x = torch.randn(4, 9, 6)
    expected, (h_n, c_n) = reference(x)
    got, finals = ours(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(torch.stack([h for h, _ in finals]), h_n, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(torch.stack([c for _, c in finals]), c_n, atol=1e-6, rtol=1e-5)


def test_a_masked_step_leaves_the_state_unchanged():
    torch.manual_seed(1)
    w_ih, w_hh, b = torch.randn(8, 3), torch.randn(8, 2), torch.randn(8)
    x = torch.randn(1, 4, 3)
    keep = torch.tensor([[True, False, False, True]])
    out, (h, c) = lstm_layer(x, w_ih, w_hh, b, keep)
    assert torch.equal(out[0, 1], out[0, 0]) and torch.equal(out[0, 2], out[0, 0])
    _, (h2, c2) = lstm_layer(x[:, [0, 3]], w_ih, w_hh, b)  # the same sequence without the two masked steps
    torch.testing.assert_close(h, h2, atol=1e-6, rtol=0)
    torch.testing.assert_close(c, c2, atol=1e-6, rtol=0)


def _model_and_reviews(readout: str):
    d = Dictionary()
    words = [d.add_symbol(f"w{i}") for i in range(20)]
    torch.manual_seed(0)
    model = VanillaLSTMClassifier(len(d), d.pad(), 2, 8, 8, 2, readout, dropout=0.1).eval()
    reviews = [[d.bos()] + words[:12] + [d.eos()], [d.bos()] + words[5:9] + [d.eos()]]  # 14 and 6 tokens
    return d, model, [torch.tensor(r) for r in reviews]


def _padded(reviews, pad: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in reviews)
    rows = []
    for r in reviews:
        filler = torch.full((width - len(r),), pad)
        rows.append(torch.cat([filler, r]) if left else torch.cat([r, filler]))
    return torch.stack(rows)  # (B, T)


def test_last_token_readout_is_the_same_under_left_right_and_no_padding():
    d, model, reviews = _model_and_reviews("last-token")
    alone = torch.cat([model(r.unsqueeze(0)) for r in reviews])  # no padding: (2, classes)
    right = model(_padded(reviews, d.pad(), left=False))
    left = model(_padded(reviews, d.pad(), left=True))
    torch.testing.assert_close(right, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(left, alone, atol=1e-6, rtol=0)


def test_last_token_readout_trains_the_same_under_left_and_right_padding():
    """Without dropout, one training step's gradients agree under left and right padding: the rows
    lstm-post-masked and lstm-pre-masked differ in training only in where dropout falls. With last-step they do not."""
    d, _, reviews = _model_and_reviews("last-token")

    def gradients(readout: str, left: bool):
        torch.manual_seed(0)
        model = VanillaLSTMClassifier(len(d), d.pad(), 2, 8, 8, 2, readout, dropout=0.0).train()
        logits = model(_padded(reviews, d.pad(), left))  # (2, classes)
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    masked_right, masked_left = gradients("last-token", left=False), gradients("last-token", left=True)
    assert masked_right.abs().max() > 1e-3  # a real gradient, not zeros
    torch.testing.assert_close(masked_left, masked_right, atol=1e-6, rtol=0)
    assert (gradients("last-step", left=True) - gradients("last-step", left=False)).abs().max() > 1e-3


def test_last_step_readout_reads_the_padding_after_a_short_review():
    d, model, reviews = _model_and_reviews("last-step")
    alone = torch.cat([model(r.unsqueeze(0)) for r in reviews])
    right = model(_padded(reviews, d.pad(), left=False))
    torch.testing.assert_close(right[0], alone[0], atol=1e-6, rtol=0)  # the longest review has no padding
    assert (right[1] - alone[1]).abs().max() > 1e-3  # eight padded steps after the short review change its logits


def test_pad_to_length_pads_every_batch_to_the_same_width():
    from test_imdb import _dataset

    d, ds = _dataset(max_positions=40)
    ds.pad_to_length = 32
    batch = ds.collater([ds[1]])["net_input"]["src_tokens"]  # one review of 5 tokens
    assert batch.shape == (1, 32) and batch[0, 5:].eq(d.pad()).all()
    from fairseq_vanilla.tasks.imdb_classification import ImdbClassificationConfig, ImdbClassificationTask

    with pytest.raises(ValueError, match=r"^--pad-to-length must be in \[0, --max-positions 400\], got 500$"):
        ImdbClassificationTask.setup_task(
            ImdbClassificationConfig(data="nowhere", max_positions=400, pad_to_length=500)
        )


def test_impossible_flags_are_named():
    from types import SimpleNamespace

    from fairseq_vanilla.models.vanilla_lstm_classifier import check_lstm_config

    good = dict(encoder_embed_dim=8, encoder_hidden_dim=8, encoder_layers=1, dropout=0.1, pooler_dropout=0.0)
    check_lstm_config(SimpleNamespace(**good, lstm_readout="last-token"))
    with pytest.raises(ValueError, match=r"^--pooler-dropout must be in \[0, 1\), got 1.0$"):
        check_lstm_config(SimpleNamespace(**{**good, "pooler_dropout": 1.0}, lstm_readout="last-step"))
    with pytest.raises(ValueError, match="^--lstm-readout must be last-step or last-token, got 'first'$"):
        check_lstm_config(SimpleNamespace(**good, lstm_readout="first"))


# ---------------------------------------------------------------- through the stock binaries

TRAIN_FLAGS = (
    "--user-dir",
    USER_DIR,
    "--task",
    "imdb_classification",
    "--arch",
    "vanilla_lstm_classifier_tiny",
    "--criterion",
    "vanilla_label_smoothed_classification",
    "--optimizer",
    "adam",
    "--lr",
    "0.01",
    "--batch-size",
    "16",
    "--seed",
    "1",
    "--num-workers",
    "0",
    "--log-format",
    "simple",
    "--log-interval",
    "10",
    "--max-positions",
    "64",
    "--no-epoch-checkpoints",
)


@pytest.fixture(scope="module")
def synthetic_bin(tmp_path_factory):
    base = tmp_path_factory.mktemp("imdb_lstm")
    make_aclimdb(base / "src")
    run("bash", PREPARE, "--from", base / "src", "--out", base / "prep", "--bpe-ops", "40", "--valid-size", "10")
    return base / "prep" / "bin"


def test_fairseq_train_and_validate_the_lstm_classifier(synthetic_bin, tmp_path):
    save = tmp_path / "ckpt"
    proc = fairseq(
        "fairseq-train", synthetic_bin, *TRAIN_FLAGS, "--max-update", "60", "--save-dir", save, "--left-pad",
        "--pad-to-length", "64", "--truncation", "tail",  # a long review keeps its last words, which name the label
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert "VanillaLSTMClassifier" in log and "num_updates 60" in log
    examples, accuracy = validate_classifier(synthetic_bin, save / "checkpoint_last.pt", "--batch-size", "8")
    assert examples == 41 and accuracy >= 0.9  # the words give the label away
    from fairseq_vanilla.inference.hub import ReviewClassifier

    clf = ReviewClassifier.from_pretrained(str(save / "checkpoint_last.pt"), str(synthetic_bin.parent))
    assert clf.task.cfg.pad_to_length == 64 and clf.task.cfg.left_pad  # as trained
    got = clf.predict_batch(["A great, wonderful and superb film. Brilliant!", "Awful. Boring, dull and terrible."])
    assert [label for label, _ in got] == ["pos", "neg"]


def test_a_bad_flag_is_one_line(synthetic_bin, tmp_path):
    proc = fairseq(
        "fairseq-train",
        synthetic_bin,
        *TRAIN_FLAGS,
        "--encoder-layers",
        "0",
        "--save-dir",
        tmp_path / "x",
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: --encoder-layers must be at least 1, got 0"
