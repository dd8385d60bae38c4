"""The chunked label-smoothed loss: the pure function by hand, the criterion's chunked path against the full
log-softmax (loss, nll, accuracy, every parameter's gradient) for each way of tying the output weight, and a real
fairseq-train run both ways."""

import math
import os
import re
import subprocess
from types import SimpleNamespace

import pytest
import torch

import fairseq_vanilla  # noqa: F401  (registers)
from conftest import BIN, ROOT, TINY_TRAIN_FLAGS, USER_DIR
from fairseq_vanilla.criterions.label_smoothed_cross_entropy import (
    VanillaLabelSmoothedCrossEntropyCriterion,
)
from fairseq_vanilla.criterions.label_smoothed_cross_entropy_with_alignment import (
    VanillaLabelSmoothedCrossEntropyWithAlignmentCriterion,
)
from fairseq_vanilla.fairseq_fixes.errors import FlagError
from fairseq_vanilla.models.vanilla_transformer import VanillaTransformerConfig, VanillaTransformerModel
from fairseq_vanilla.modules.chunked_cross_entropy import chunked_label_smoothed_cross_entropy, default_chunk_tokens
from test_model import make_task

TIE = {  # fairseq flag → (share_all_embeddings, share_decoder_input_output_embed)
    "--share-all-embeddings": (True, False),
    "--share-decoder-input-output-embed": (False, True),
    "separate output weight": (False, False),
}


def test_hand_computed_tiny_case():
    """V = 3, d_model = 2, ε = 0.1, two tokens in two chunks of one.
    W rows e_1, e_2, 0. Token 1: h = (ln 2, 0), logits (ln 2, 0, 0), p = (1/2, 1/4, 1/4), y = 0.
    Token 2: h = (0, 0), p = (1/3, 1/3, 1/3), y = 2.
    nll = ln 2 + ln 3 = ln 6; Σ_v -log p_v = (ln 2 + 2 ln 4) + 3 ln 3 = 5 ln 2 + 3 ln 3;
    loss = 0.9 · ln 6 + (0.1/3) · (5 ln 2 + 3 ln 3).
    q = 0.9·onehot + 0.1/3: softmax − q = (1/2 − 14/15, 1/4 − 1/30, 1/4 − 1/30) = (−13/30, 13/60, 13/60) for token 1,
    (1/3 − 1/30, 1/3 − 1/30, 1/3 − 28/30) = (3/10, 3/10, −6/10) for token 2.
    ∂/∂h_i = (softmax − q)_i · W: (−13/30, 13/60) and (3/10, 3/10); ∂/∂W_v = Σ_i (softmax − q)_iv · h_i: column 0 is
    ln 2 · (−13/30, 13/60, 13/60) (token 2's h is 0), column 1 is 0. The backward pass scales all by grad_output (2)."""
    ln2, ln3 = math.log(2), math.log(3)
    h = torch.tensor([[ln2, 0.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss, nll, correct = chunked_label_smoothed_cross_entropy(h, W, torch.tensor([0, 2]), 0.1, 1, count_correct=True)
    assert nll.item() == pytest.approx(math.log(6), rel=1e-12)
    assert loss.item() == pytest.approx(0.9 * math.log(6) + 0.1 / 3 * (5 * ln2 + 3 * ln3), rel=1e-12)
    assert correct.item() == 1  # token 1's argmax is its target; token 2's three-way tie goes to class 0
    assert not nll.requires_grad and not correct.requires_grad  # logged only: no gradient
    (2 * loss).backward()
    expected_h = 2 * torch.tensor([[-13 / 30, 13 / 60], [3 / 10, 3 / 10]], dtype=torch.float64)
    expected_W = 2 * torch.tensor([[-13 / 30 * ln2, 0], [13 / 60 * ln2, 0], [13 / 60 * ln2, 0]], dtype=torch.float64)
    torch.testing.assert_close(h.grad, expected_h, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(W.grad, expected_W, rtol=1e-12, atol=1e-15)


def test_pure_function_checks_its_arguments_and_chunk_rule():
    h, W = torch.zeros(4, 8), torch.zeros(5, 8)
    with pytest.raises(ValueError, match="chunk_tokens"):
        chunked_label_smoothed_cross_entropy(h, W, torch.zeros(4, dtype=torch.long), 0.1, 0)
    with pytest.raises(ValueError, match="target"):
        chunked_label_smoothed_cross_entropy(h, W, torch.zeros(3, dtype=torch.long), 0.1, 2)
    assert default_chunk_tokens(37_000) == 1813  # 1813 × 37,000 × 4 B ≤ 256 MiB < 1814 × …
    assert default_chunk_tokens(10**9) == 1


def build(tie: str, dtype=torch.float32, arch_cfg=VanillaTransformerConfig, model_cls=VanillaTransformerModel, **extra):
    share_all, share_decoder = TIE[tie]
    cfg = arch_cfg(
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        encoder_layers=2,
        dropout=0.1,
        share_all_embeddings=share_all,
        share_decoder_input_output_embed=share_decoder,
        **extra,
    )
    src_task, tgt_task = make_task(40), make_task(40 if share_all else 57)
    task = SimpleNamespace(source_dictionary=src_task.source_dictionary, target_dictionary=tgt_task.target_dictionary)
    torch.manual_seed(0)
    return model_cls.build_model(cfg, task).to(dtype).train(), task


def sample_for(task, pad=1):
    torch.manual_seed(3)
    V_src, V_tgt = len(task.source_dictionary), len(task.target_dictionary)
    src, prev = torch.randint(4, V_src, (5, 9)), torch.randint(4, V_tgt, (5, 8))
    prev[1, 5:] = pad  # right-padded targets, as fairseq pads them
    prev[3, 2:] = pad
    target = torch.cat([prev[:, 1:], torch.full((5, 1), pad)], dim=1)  # (B, T): shifted by one
    target = torch.where(target.eq(pad) & prev.ne(pad), 2, target)  # </s> after the last word
    return {
        "net_input": {"src_tokens": src, "src_lengths": src.ne(pad).sum(1), "prev_output_tokens": prev},
        "target": target,
        "ntokens": int(target.ne(pad).sum()),
    }


def loss_and_grads(criterion, model, sample):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(11)  # the same dropout masks both ways
    loss, sample_size, log = criterion(model, sample)
    (loss / sample_size).backward()
    grads = {name: p.grad.float().clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), log, grads


def assert_same(chunked, full, rel: float, deep_rel: float = 0.0):
    """Loss, nll and the pre-softmax weight's gradient within ``rel``; every other gradient within ``deep_rel`` (default
    ``rel``) of its largest entry. The attention key biases, whose gradient is 0 in exact arithmetic (a softmax does
    not change when one constant is added to all its scores), are held to ``deep_rel`` of the largest gradient."""
    (loss_c, log_c, grads_c), (loss_f, log_f, grads_f) = chunked, full
    assert abs(loss_c.item() / loss_f.item() - 1) <= rel, (loss_c, loss_f)
    assert abs(log_c["nll_loss"].item() / log_f["nll_loss"].item() - 1) <= rel
    assert (log_c["n_correct"], log_c["total"], log_c["sample_size"]) == (
        log_f["n_correct"],
        log_f["total"],
        log_f["sample_size"],
    )
    assert grads_c.keys() == grads_f.keys() and len(grads_f) > 10
    largest = max(g.abs().max().item() for g in grads_f.values())
    for name, g in grads_f.items():
        scale = largest if name.endswith("W_K.bias") else g.abs().max().item()
        bound = rel if name == "decoder.output_projection.weight" else (deep_rel or rel)
        assert (grads_c[name] - g).abs().max().item() <= bound * scale, name


@pytest.mark.parametrize("tie", list(TIE))
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("sentence_avg", [False, True])
def test_chunked_criterion_equals_the_full_log_softmax_in_fp32(tie, eps, sentence_avg):
    model, task = build(tie)
    sample = sample_for(task)
    kwargs = dict(label_smoothing=eps, sentence_avg=sentence_avg, report_accuracy=True)
    full = VanillaLabelSmoothedCrossEntropyCriterion(task, **kwargs, chunked_loss="off")
    chunked = VanillaLabelSmoothedCrossEntropyCriterion(task, **kwargs, chunked_loss="on", loss_chunk_tokens=7)
    assert full.chunked_weight(model) is None and chunked.chunked_weight(model) is not None
    assert_same(loss_and_grads(chunked, model, sample), loss_and_grads(full, model, sample), 1e-6)
    with torch.no_grad():  # evaluation: no gradient computed, the same numbers
        model.eval()
        (loss_c, _, _), (loss_f, _, _) = chunked(model, sample), full(model, sample)
        assert abs(loss_c.item() / loss_f.item() - 1) <= 1e-6 and not loss_c.requires_grad


def test_chunked_criterion_with_pre_norm_layers_and_the_final_layer_norm():
    model, task = build("--share-all-embeddings", encoder_normalize_before=True, decoder_normalize_before=True)
    assert model.decoder.layer_norm is not None
    sample = sample_for(task)
    kwargs = dict(label_smoothing=0.1, sentence_avg=False, report_accuracy=True)
    full = VanillaLabelSmoothedCrossEntropyCriterion(task, **kwargs, chunked_loss="off")
    chunked = VanillaLabelSmoothedCrossEntropyCriterion(task, **kwargs, chunked_loss="on", loss_chunk_tokens=7)
    assert_same(loss_and_grads(chunked, model, sample), loss_and_grads(full, model, sample), 1e-6)


@pytest.mark.parametrize("tie", ["--share-all-embeddings", "separate output weight"])
def test_chunked_criterion_in_bf16_within_one_rounding(tie):
    model, task = build(tie, dtype=torch.bfloat16)
    sample = sample_for(task)
    kwargs = dict(label_smoothing=0.1, sentence_avg=False, report_accuracy=True)
    full = VanillaLabelSmoothedCrossEntropyCriterion(task, **kwargs, chunked_loss="off")
    chunked = VanillaLabelSmoothedCrossEntropyCriterion(task, **kwargs, loss_chunk_tokens=5)  # auto: a vanilla model
    result = loss_and_grads(chunked, model, sample)
    assert result[0].dtype == torch.float32
    assert all(p.grad.dtype == torch.bfloat16 for p in model.parameters() if p.grad is not None)
    # the loss and the output weight's gradient within one rounding; deeper gradients within a few roundings: the
    # gradient of the hidden states is rounded once in either path, but by products of other shapes (chunk × V
    # against B·T × V), and the bf16 backward pass carries that difference on
    eps = torch.finfo(torch.bfloat16).eps
    assert_same(result, loss_and_grads(full, model, sample), eps, 4 * eps)


def test_alignment_criterion_chunked_keeps_the_attention_it_supervises():
    from fairseq_vanilla.models.vanilla_transformer_align import (
        VanillaTransformerAlignConfig,
        VanillaTransformerAlignModel,
    )

    model, task = build(
        "--share-all-embeddings", arch_cfg=VanillaTransformerAlignConfig, model_cls=VanillaTransformerAlignModel
    )
    sample = sample_for(task)
    sample["alignments"] = torch.tensor([[0, 0], [3, 1], [2, 9], [5, 10], [1, 17]])  # (source, target row B·T)
    sample["align_weights"] = torch.tensor([1.0, 0.5, 0.5, 1.0, 1.0])
    kwargs = dict(label_smoothing=0.1, sentence_avg=False, alignment_lambda=0.5, report_accuracy=True)
    full = VanillaLabelSmoothedCrossEntropyWithAlignmentCriterion(task, **kwargs, chunked_loss="off")
    chunked = VanillaLabelSmoothedCrossEntropyWithAlignmentCriterion(task, **kwargs, loss_chunk_tokens=4)
    result_c, result_f = loss_and_grads(chunked, model, sample), loss_and_grads(full, model, sample)
    assert result_c[1]["alignment_loss"] > 0
    assert abs(result_c[1]["alignment_loss"].item() / result_f[1]["alignment_loss"].item() - 1) <= 1e-6
    assert_same(result_c, result_f, 1e-6)


def test_flag_checks_name_the_flag():
    task = make_task()
    with pytest.raises(FlagError, match="--loss-chunk-tokens"):
        VanillaLabelSmoothedCrossEntropyCriterion(task, 0.1, False, loss_chunk_tokens=-1)
    with pytest.raises(FlagError, match="--chunked-loss"):
        VanillaLabelSmoothedCrossEntropyCriterion(task, 0.1, False, chunked_loss="yes")
    with pytest.raises(FlagError, match="--label-smoothing"):
        VanillaLabelSmoothedCrossEntropyCriterion(task, 1.0, False)
    other = SimpleNamespace(decoder=torch.nn.Linear(2, 3))  # a model whose decoder is not the vanilla one
    assert VanillaLabelSmoothedCrossEntropyCriterion(task, 0.1, False).chunked_weight(other) is None  # auto
    with pytest.raises(FlagError, match="--chunked-loss on needs a vanilla_transformer"):
        VanillaLabelSmoothedCrossEntropyCriterion(task, 0.1, False, chunked_loss="on").chunked_weight(other)


def test_the_decoder_names_its_pre_softmax_weight_unless_its_output_layer_is_its_own():
    """The shared embedding (tied), the bias-free projection (untied); None once a subclass replaces output_layer,
    so the criterion falls back to the decoder's own logits."""
    from fairseq_vanilla.criterions.label_smoothed_cross_entropy import pre_softmax_weight

    tied, _ = build("--share-all-embeddings")
    assert pre_softmax_weight(tied) is tied.decoder.embed_tokens.weight
    untied, _ = build("separate output weight")
    assert pre_softmax_weight(untied) is untied.decoder.output_projection.weight
    assert untied.decoder.output_projection.weight is not untied.decoder.embed_tokens.weight

    class Scaled(type(untied.decoder)):
        def output_layer(self, features):
            return 2 * super().output_layer(features)

    untied.decoder.__class__ = Scaled
    assert pre_softmax_weight(untied) is None


def test_fairseq_train_gives_the_same_losses_chunked_or_not(tiny_corpus, tmp_path):
    """The stock fairseq-train, 6 updates (then fairseq's validation), --chunked-loss off against on with chunks of
    64 target tokens (the two runs side by side, one thread each): the same train loss, nll, accuracy and gradient
    norm at every update and the same validation figures."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    outputs = {mode: open(tmp_path / f"{mode}.log", "w") for mode in ("off", "on")}  # files: no run blocks on a pipe
    runs = {
        mode: subprocess.Popen(
            [
                str(BIN / "fairseq-train"),
                tiny_corpus,
                "--user-dir",
                USER_DIR,
                *TINY_TRAIN_FLAGS,
                "--max-update",
                "6",
                "--log-interval",
                "1",
                "--report-accuracy",
                "--save-dir",
                tmp_path / mode,
                "--no-save",
                "--chunked-loss",
                mode,
                "--loss-chunk-tokens",
                "64",
            ],
            stdout=outputs[mode],
            stderr=subprocess.STDOUT,
            env=env,
        )
        for mode in ("off", "on")
    }
    codes = [proc.wait(timeout=600) for proc in runs.values()]
    for output in outputs.values():
        output.close()
    logs = {mode: (tmp_path / f"{mode}.log").read_text() for mode in runs}
    assert codes == [0, 0], logs
    figures = {}
    for mode, log in logs.items():
        train = re.findall(r"loss=(\S+), nll_loss=(\S+),.*? accuracy=(\S+),.*? num_updates=(\d+),.*? gnorm=(\S+),", log)
        valid = re.findall(r"valid on 'valid' subset \| loss (\S+) \| nll_loss (\S+) \|.*? accuracy (\S+) \|", log)
        figures[mode] = train, valid
    train, valid = figures["off"]
    assert [u for _, _, _, u, _ in train] == [str(i) for i in range(1, 7)], logs["off"][-3000:]
    assert len(valid) == 1
    assert figures["on"] == figures["off"]
