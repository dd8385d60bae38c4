"""The memory planner: parameter and optimizer arithmetic by hand, the activation model against measured CPU peaks,
the flags it derives, the batches it expects from a data folder, and scripts/fit-memory.py."""

import dataclasses
import re

import pytest
import torch

import fairseq_vanilla  # noqa: F401  (registers)
from conftest import ROOT, USER_DIR, run_script
from fairseq_vanilla.experiments.memory import measure
from fairseq_vanilla.experiments.memory import planner as mem
from fairseq_vanilla.experiments.memory.report import data_facts, parse_memory

# The target for estimate vs measured peak is 15 %; on the CPU the counts are exact to a few bytes, so a
# much tighter bound holds and is what we assert.
TOLERANCE = 0.02
BASE = mem.ModelSize()  # the paper's base model, V = 37,000 shared


def test_parameter_count_by_hand_and_against_the_built_model():
    d, d_ff, V, N = 512, 2048, 37000, 6
    attention = 4 * (d * d + d)  # W_Q, W_K, W_V, W_O, each with a bias
    ffn = d * d_ff + d_ff + d_ff * d + d
    encoder_layer, decoder_layer = attention + ffn + 2 * 2 * d, 2 * attention + ffn + 3 * 2 * d
    assert mem.parameter_count(BASE) == V * d + N * encoder_layer + N * decoder_layer == 63_082_496
    for size in (
        BASE,
        mem.ModelSize(
            d_model=64,
            d_ff=96,
            h=4,
            N_enc=2,
            N_dec=3,
            vocab=500,
            embedding_matrices=3,
            d_k=24,
            d_v=8,
            max_positions=128,
        ),
    ):
        model = measure.build_model(size)
        assert mem.parameter_count(size) == sum(p.numel() for p in model.parameters())
        tables = sum(b.numel() for b in model.buffers())
        assert mem.static_bytes(size, "fp32")["positional_tables"] == 4 * tables


def test_pre_norm_counts_each_stacks_final_layernorm():
    """A pre-norm side ends with one more LayerNorm: 2·d_model parameters (against vanilla_transformer_tiny as fairseq's
    parser builds it with --encoder/--decoder-normalize-before) and, a token, its input and its two statistics (against
    the profiler's peaks: pre-norm minus post-norm, measured and estimated)."""
    from fairseq_vanilla.models.vanilla_transformer import VanillaTransformerModel
    from test_model import make_task, parse_arch

    task = make_task(n_symbols=60)
    vocab, d = len(task.source_dictionary), 128
    counts = []
    for sides in ((), ("encoder",), ("encoder", "decoder")):
        args = parse_arch("--arch", "vanilla_transformer_tiny", "--share-all-embeddings",
                          *(f"--{side}-normalize-before" for side in sides))  # fmt: skip
        model = VanillaTransformerModel.build_model(args, task)
        flags = {f"{side}_normalize_before": True for side in sides}
        size = mem.size_from_arch("vanilla_transformer_tiny", vocab, True, **flags)
        assert (size.pre_norm_enc, size.pre_norm_dec) == ("encoder" in sides, "decoder" in sides)
        counts.append(mem.parameter_count(size))
        assert counts[-1] == sum(p.numel() for p in model.parameters())
    assert counts[1] - counts[0] == counts[2] - counts[1] == 2 * d  # gain and bias of one d_model LayerNorm
    post = mem.ModelSize(d_model=64, d_ff=128, h=4, N_enc=2, N_dec=2, vocab=500, max_positions=128)
    pre = dataclasses.replace(post, pre_norm_enc=True, pre_norm_dec=True)
    tokens = 512
    measured = measure.measure_peak(pre, "fp32", tokens) - measure.measure_peak(post, "fp32", tokens)
    estimated = measure.estimated_activations(pre, "fp32", tokens) - measure.estimated_activations(post, "fp32", tokens)
    assert estimated == tokens * 2 * (4 * 64 + 2 * 4)  # two final norms: fp32 input (d_model), mean and 1/σ
    assert abs(measured - estimated) <= 0.01 * estimated, (measured, estimated)


def test_optimizer_and_master_copy_bytes_by_hand():
    P = 63_082_496
    tables = 2 * 1024 * 512
    fp32 = mem.static_bytes(BASE, "fp32")
    assert fp32 == dict(
        weights=4 * P,
        gradients=4 * P,
        master_weights=0,
        master_gradients=0,
        adam_state=8 * P,
        positional_tables=4 * tables,
    )
    fp16 = mem.static_bytes(BASE, "fp16")  # FP16Optimizer: half weights and grads + fp32 copies + Adam's m, v
    assert sum(fp16.values()) == (2 + 2 + 4 + 4 + 8) * P + 2 * tables == 1_263_747_072
    assert sum(mem.static_bytes(BASE, "memory-efficient-fp16").values()) == 12 * P + 2 * tables
    assert mem.static_bytes(BASE, "bf16") == fp16


def test_plan_is_the_largest_fit_and_reaches_the_papers_batch():
    memory = parse_memory("15GB")
    assert memory == 15e9 and parse_memory("14.74GiB") == 14.74 * 2**30
    assert parse_memory("16000MiB") == 16000 * 2**20 and parse_memory("15") == 15 * 2**30
    with pytest.raises(ValueError, match="15XB"):
        parse_memory("15XB")
    usable = memory * 0.9 - 2**30
    for precision in ("fp32", "fp16"):
        p = mem.plan(BASE, precision, memory)
        static = sum(p.static.values())
        a = mem.bytes_per_token(BASE, precision)
        assert static + p.max_tokens_fit * a <= usable < static + (p.max_tokens_fit + 128) * a
        assert p.max_tokens <= p.max_tokens_fit and p.max_tokens % 128 == 0
        assert p.max_tokens * 0.9 * p.update_freq >= 25_000 > p.max_tokens_fit * 0.9 * (p.update_freq - 1)
    assert mem.bytes_per_token(BASE, "fp16") < mem.bytes_per_token(BASE, "fp32")
    # --chunked-loss off: fp16 halves the hidden activations but not the fp32 B·T·V tensors of the output layer
    full = dataclasses.replace(BASE, chunked_loss=False)
    assert mem.activation_terms(full, "fp16")["output_layer"] == (2 + 4 + 4 + 4) * 37000
    # chunked (the default): a token keeps ∂loss/∂h and its hidden state's copy (fp16: 2 · 2 · d_model bytes) and its
    # int64 target; a step adds one chunk of 1813 tokens' fp32 logits and log-probabilities and the fp32 ∂loss/∂W
    assert mem.activation_terms(BASE, "fp16")["output_layer"] == 2 * 2 * 512 + 8
    p = mem.plan(BASE, "fp16", memory)
    assert p.static["loss_chunk"] == 8 * 1813 * 37000 and p.static["loss_weight_gradient"] == 4 * 37000 * 512
    # the vocabulary wall: on 15 GB in fp16 the full path needs two steps for the paper's 25k tokens, chunked one
    p_full = mem.plan(full, "fp16", memory)
    assert p.max_tokens_fit > 3 * p_full.max_tokens_fit and (p.update_freq, p_full.update_freq) == (1, 2)
    with pytest.raises(ValueError, match="is too small"):
        mem.plan(BASE, "fp32", parse_memory("1GiB"))


def test_profiler_peak_follows_allocations_and_frees():
    """A hand-made pattern: 4 MB, then 8 MB, free the 4 MB, then 2 MB: the peak is 12 MB (plus nothing else)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        a = torch.empty(1_000_000)  # 4 MB
        b = torch.empty(2_000_000)  # 8 MB
        del a
        c = torch.empty(500_000)  # 2 MB
        del b, c
    assert measure.profiler_peak(prof) == 12_000_000


def test_activation_model_fits_measured_cpu_peaks():
    """Seven small sizes (each term moved once) measured with the profiler on the full log-softmax path: the fitted
    scales are 1 and a held-out size, larger in every dimension, is predicted within TOLERANCE with the chunked loss
    in fp32, fp16 and bf16 (on the CPU a bf16 step takes the plain formula, whose stored weights the model counts),
    and with the loss in several chunks."""
    scales, points = measure.calibrate("fp32")
    # within 3 %: the additive attention masks (B·T_q·T_k a layer, quadratic in T, not in the per-token model) are
    # absorbed by the fitted terms at the measured sentence length
    assert all(abs(v - 1) < 0.03 for v in scales.values()), scales
    assert all(abs(est / m - 1) < TOLERANCE for _, m, est in points)
    held_out = mem.ModelSize(d_model=192, d_ff=768, h=6, N_enc=3, N_dec=2, vocab=5000, max_positions=256)
    in_chunks = dataclasses.replace(held_out, loss_chunk_tokens=300)  # the chunked loss in 4 chunks, not 1
    for size, precision, tokens in (  # bf16: the plain formula's weights
        (held_out, "fp32", 1024),
        (held_out, "fp16", 256),
        (held_out, "bf16", 512),
        (in_chunks, "fp32", 1024),
    ):
        measured = measure.measure_peak(size, precision, tokens)
        estimated = measure.estimated_activations(size, precision, tokens, "cpu")
        assert abs(estimated / measured - 1) < TOLERANCE, (precision, measured, estimated)


def test_data_facts_match_fairseqs_own_batches(tiny_corpus):
    """Vocabulary and real target tokens per batch of fairseq's batch iterator over the same training split."""
    from fairseq import options, tasks
    from fairseq.data import Dictionary

    args = options.parse_args_and_arch(
        options.get_training_parser(), [str(tiny_corpus), "--user-dir", USER_DIR, "--arch", "vanilla_transformer_tiny"]
    )
    task = tasks.setup_task(args)
    task.load_dataset("train")
    dataset = task.dataset("train")
    for max_tokens in (256, 1024):
        itr = task.get_batch_iterator(dataset, max_tokens=max_tokens, seed=1, disable_iterator_cache=True)
        batches = itr.frozen_batches
        expected = sum(int(dataset.tgt_sizes[b].sum()) for b in batches) / len(batches) / max_tokens
        vocab, fill = data_facts(str(tiny_corpus), max_tokens)
        assert vocab == len(Dictionary.load(str(tiny_corpus / "dict.de.txt")))
        assert abs(fill / expected - 1) < 0.01, (max_tokens, fill, expected)
    with pytest.raises(ValueError, match="no train"):
        data_facts(str(ROOT / "examples"), 1024)


def test_fit_memory_script_prints_the_plans_flags_and_breakdown():
    out = run_script("fit-memory.py", "--arch", "vanilla_transformer", "--memory", "15GB", "--fp16").stdout
    p = mem.plan(BASE, "fp16", 15e9)
    assert f"largest --max-tokens that fits: {p.max_tokens_fit}" in out
    assert f"--max-tokens {p.max_tokens} --update-freq {p.update_freq} --fp16" in out
    assert "63,082,496 parameters" in out
    for part in ("master_weights", "adam_state", "activations: output_layer", "largest single allocation"):
        assert part in out
    total = float(re.search(r"total \(estimated peak\)\s+([\d.]+) GiB", out).group(1))
    assert abs(total - p.peak_bytes / 2**30) < 0.01
