"""Half precision on the CPU: the model and criteria in fp16/bf16 (masks, fully padded rows, long sequences, fp32
loss), fairseq's --fp16 / --memory-efficient-fp16 training paths, and --bf16 without a TPU (the repair)."""

import math
import re
from types import SimpleNamespace

import pytest
import torch

import fairseq_vanilla  # noqa: F401  (registers, installs the repairs)
from conftest import TINY_TRAIN_FLAGS, USER_DIR, fairseq
from fairseq_vanilla.criterions.label_smoothed_classification import VanillaLabelSmoothedClassificationCriterion
from fairseq_vanilla.criterions.label_smoothed_cross_entropy import VanillaLabelSmoothedCrossEntropyCriterion
from fairseq_vanilla.fairseq_fixes import bf16 as bf16_repair
from fairseq_vanilla.modules.attention import attention
from test_model import make_model, make_task

HALF = [torch.float16, torch.bfloat16]
# fp16 keeps ~3 decimal digits, bf16 ~2: tolerances on logits of magnitude ≲ 10
TOLERANCE = {torch.float16: 0.02, torch.bfloat16: 0.1}


def translation_sample(src, prev, pad=1):
    target = torch.cat([prev[:, 1:], torch.full((prev.size(0), 1), 2)], dim=1)  # (B, T): shifted by one
    return {
        "net_input": {"src_tokens": src, "src_lengths": src.ne(pad).sum(1), "prev_output_tokens": prev},
        "target": target,
        "ntokens": int(target.ne(pad).sum()),
    }


@pytest.mark.parametrize("dtype", HALF)
def test_fully_padded_row_stays_finite_in_forward_and_backward(dtype):
    """A source row of nothing but padding: every attention row over it is fully masked; outputs and gradients stay
    finite and the other rows match fp32."""
    reference, model = make_model(dropout=0.0), make_model(dropout=0.0).to(dtype).train()
    src = torch.randint(4, 30, (3, 7))
    src[2] = model.encoder.padding_idx
    prev = torch.randint(4, 30, (3, 5))
    logits, _ = model(src, None, prev)
    expected, _ = reference(src, None, prev)
    assert logits.dtype == dtype and torch.isfinite(logits).all()
    assert (logits[:2].float() - expected[:2]).abs().max() < TOLERANCE[dtype]
    logits.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("fast", [True, False])
def test_masked_attention_in_half_precision(dtype, fast):
    """Fused kernel and plain formula in half precision: masked keys get no weight even where scores are large and
    negative (score + the dtype's minimum overflows to -inf), and a fully masked row gives no NaN (plain formula:
    zero weights, as in fp32)."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 2, 5, 8) * 8, torch.randn(2, 2, 6, 8) * 8, torch.randn(2, 2, 6, 8)  # (B, h, T, d_k)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, 4:] = True  # two padded keys
    mask[1] = True  # every key padded
    out, weights = attention(
        q.to(dtype), k.to(dtype), v.to(dtype), key_padding_mask=mask, fast=fast, need_weights=not fast
    )
    ref, ref_weights = attention(q, k, v, key_padding_mask=mask, fast=False, need_weights=True)
    assert torch.isfinite(out).all()
    assert (out[0].float() - ref[0]).abs().max() < 3 * TOLERANCE[dtype]
    if not fast:
        assert weights[0, ..., 4:].abs().max() == 0 and weights[1].abs().max() == 0
        assert torch.allclose(weights[0].float().sum(-1), torch.ones(2, 5), atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", HALF)
def test_long_sequence_in_half_precision_matches_fp32(dtype):
    """1000 source and target tokens (positions near the end of the sinusoid table, causal mask over 1000 keys,
    300 padded source positions): finite and close to fp32."""
    reference = make_model(max_source_positions=1024, max_target_positions=1024)
    model = make_model(max_source_positions=1024, max_target_positions=1024).to(dtype)
    src, prev = torch.randint(4, 30, (2, 1000)), torch.randint(4, 30, (2, 1000))
    src[1, :300] = reference.encoder.padding_idx  # left padding, as fairseq pads sources
    with torch.no_grad():
        logits, _ = model(src, None, prev)
        expected, _ = reference(src, None, prev)
    assert torch.isfinite(logits).all()
    assert (logits.float() - expected).abs().max() < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", HALF)
def test_criteria_compute_the_loss_in_fp32(dtype):
    """The translation and classification criteria on a half-precision model: the loss is an fp32 tensor (log-softmax
    in fp32, as fairseq's --fp16 needs) and equals the fp32 model's loss to the half-precision tolerance."""
    task = SimpleNamespace(target_dictionary=make_task().target_dictionary)
    criterion = VanillaLabelSmoothedCrossEntropyCriterion(task, label_smoothing=0.1, sentence_avg=False)
    torch.manual_seed(1)
    sample = translation_sample(torch.randint(4, 30, (4, 9)), torch.randint(4, 30, (4, 8)))
    loss, _, _ = criterion(make_model().to(dtype), sample)
    expected, _, _ = criterion(make_model(), sample)
    assert loss.dtype == torch.float32
    assert abs(loss.item() - expected.item()) / expected.item() < TOLERANCE[dtype] / 2

    classifier = torch.nn.Linear(16, 3).to(dtype)
    model = lambda src_tokens, **_: classifier(src_tokens)  # noqa: E731  (logits (B, 3) in half precision)
    sample = {
        "net_input": {"src_tokens": torch.randn(5, 16).to(dtype)},
        "target": torch.tensor([0, 1, 2, 1, 0]),
        "ntokens": 5,
    }
    loss, n, _ = VanillaLabelSmoothedClassificationCriterion(task, label_smoothing=0.1)(model, sample)
    assert loss.dtype == torch.float32 and n == 5 and torch.isfinite(loss)


def test_upstream_bf16_implies_tpu_and_the_repair_unties_it():
    """fairseq's parser sets tpu whenever bf16 is set (the defect); the repair resets it unless --tpu was given."""
    from fairseq import options
    from fairseq.distributed import utils as distributed_utils

    args = options.parse_args_and_arch(
        options.get_training_parser(),
        [
            "/nonexistent",
            "--user-dir",
            USER_DIR,
            "--arch",
            "vanilla_transformer_tiny",
            "--task",
            "translation",
            "--memory-efficient-bf16",
            "--cpu",
        ],
    )
    assert args.bf16 and args.tpu  # upstream
    common = SimpleNamespace(bf16=True, tpu=True)
    assert bf16_repair.tpu_implied_only(common, ["data", "--bf16"])
    assert not bf16_repair.tpu_implied_only(common, ["data", "--bf16", "--tpu"])
    assert not bf16_repair.tpu_implied_only(SimpleNamespace(bf16=False, tpu=True), ["data"])
    bf16_repair.install()
    bf16_repair.install()  # idempotent: wraps once
    assert distributed_utils.call_main is bf16_repair.bf16_without_tpu_call_main
    assert distributed_utils.fairseq_vanilla_original_call_main.__module__ == "fairseq.distributed.utils"


def trainer_losses(corpus, *flags, updates=3):
    """fairseq's Trainer (the one fairseq-train builds, with its fp16/bf16 optimizer wrappers) for a few updates of
    the tiny model on one batch, on the CPU, without dropout or warm-up; the per-update training losses."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    argv = [
        str(corpus),
        "--user-dir",
        USER_DIR,
        *TINY_TRAIN_FLAGS,
        "--cpu",
        "--max-tokens",
        "512",
        "--dropout",
        "0",
        "--warmup-updates",
        "1",
        *flags,
    ]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    bf16_repair.untie_tpu_from_bf16(cfg, argv)  # what fairseq-train's call_main now does
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    torch.manual_seed(1)
    trainer = Trainer(cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion))
    batch = next(task.get_batch_iterator(task.dataset("train"), max_tokens=512, seed=1).next_epoch_itr(shuffle=False))
    losses = [trainer.train_step([batch])["loss"] for _ in range(updates)]
    return losses, trainer


def test_fairseq_half_precision_paths_follow_fp32(tiny_corpus):
    """--memory-efficient-fp16, --fp16 (unflattened fp32 master copies; the flattened ones live on a CUDA device),
    --bf16 and --memory-efficient-bf16 through fairseq's Trainer: the model and criterion run in half precision,
    the loss is scaled (fp16) or not (bf16), and each update's loss follows fp32's."""
    reference, trainer = trainer_losses(tiny_corpus)
    assert reference[-1] < reference[0] - 0.5  # the same batch thrice: the loss falls
    assert trainer.model.encoder.embed_tokens.weight.dtype == torch.float32
    for flags, dtype, tolerance in (
        (["--memory-efficient-fp16"], torch.float16, 0.005),
        (["--fp16", "--fp16-no-flatten-grads"], torch.float16, 0.005),
        (["--bf16"], torch.bfloat16, 0.01),
        (["--memory-efficient-bf16"], torch.bfloat16, 0.01),
    ):
        losses, trainer = trainer_losses(tiny_corpus, *flags)
        assert trainer.model.encoder.embed_tokens.weight.dtype == dtype and not trainer.tpu, flags
        assert (trainer.optimizer.scaler is None) == (dtype == torch.bfloat16), flags
        assert all(abs(a - b) / b < tolerance for a, b in zip(losses, reference)), (flags, losses, reference)
        assert losses[-1] < losses[0] - 0.5, (flags, losses)  # it learns


def test_bf16_trains_through_fairseq_train_on_the_cpu(tiny_corpus, tmp_path):
    """The stock fairseq-train --bf16 --cpu (upstream: asks torch_xla for a TPU and stops): a few updates with finite
    losses; the checkpoint holds fp32 weights and fp32 Adam state (fairseq's move_to_cpu), bf16 without tpu in its
    config, and fairseq's loader reads it back."""
    from fairseq import checkpoint_utils

    proc = fairseq(
        "fairseq-train",
        tiny_corpus,
        "--user-dir",
        USER_DIR,
        *TINY_TRAIN_FLAGS,
        "--cpu",
        "--bf16",
        "--max-update",
        "3",
        "--max-tokens",
        "512",
        "--log-interval",
        "1",
        "--disable-validation",
        "--save-dir",
        tmp_path,
    )
    log = proc.stdout + proc.stderr
    losses = [float(m) for m in re.findall(r"epoch \d+:\s+\d+ / \d+ loss=([\d.]+)", log)]
    assert len(losses) == 3 and all(map(math.isfinite, losses)), log[-2000:]
    state = checkpoint_utils.load_checkpoint_to_cpu(str(tmp_path / "checkpoint_last.pt"))
    assert state["cfg"]["common"]["bf16"] and not state["cfg"]["common"]["tpu"]
    assert state["optimizer_history"][-1]["optimizer_name"] == "FP16Optimizer"
    assert {t.dtype for t in state["model"].values()} == {torch.float32}
    adam = next(iter(state["last_optimizer_state"]["state"].values()))
    assert adam["exp_avg"].dtype == adam["exp_avg_sq"].dtype == torch.float32 and adam["step"] == 3
    models, _ = checkpoint_utils.load_model_ensemble(
        [str(tmp_path / "checkpoint_last.pt")], arg_overrides={"data": str(tiny_corpus)}
    )
    assert all(torch.isfinite(p).all() for p in models[0].parameters())
