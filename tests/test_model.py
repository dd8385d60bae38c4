"""The fairseq model: presets, flag checks, incremental decoding = full teacher-forced pass (also after reorders)."""

import argparse
from dataclasses import fields
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

import fairseq_vanilla  # noqa: F401  (registers)
from fairseq_vanilla.fairseq_fixes.errors import FlagError, check_fraction
from fairseq_vanilla.models.config import PRESETS, VanillaTransformerConfig, apply_preset
from fairseq_vanilla.models.vanilla_transformer import VanillaTransformerModel


def make_task(n_symbols=30):
    d = Dictionary()
    for i in range(n_symbols):
        d.add_symbol(f"w{i}")
    return SimpleNamespace(source_dictionary=d, target_dictionary=d)


def make_model(**overrides):
    cfg = VanillaTransformerConfig(
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        encoder_layers=2,
        dropout=0.0,
        share_all_embeddings=True,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    torch.manual_seed(0)
    return VanillaTransformerModel.build_model(cfg, make_task()).eval()


def parse_arch(*argv):
    from fairseq import options

    parser = options.get_training_parser()
    return options.parse_args_and_arch(
        parser, ["/nonexistent", "--user-dir", "fairseq_vanilla", "--task", "translation", *argv]
    )


def test_presets_through_fairseq_parser():
    base = parse_arch("--arch", "vanilla_transformer")
    big = parse_arch("--arch", "vanilla_transformer_big")
    tiny = parse_arch("--arch", "vanilla_transformer_tiny", "--encoder-layers", "3")
    assert (
        base.encoder_layers,
        base.encoder_embed_dim,
        base.encoder_ffn_embed_dim,
        base.encoder_attention_heads,
        base.dropout,
    ) == (6, 512, 2048, 8, 0.1)
    assert (
        big.encoder_layers,
        big.encoder_embed_dim,
        big.encoder_ffn_embed_dim,
        big.encoder_attention_heads,
        big.dropout,
    ) == (6, 1024, 4096, 16, 0.3)
    assert tiny.encoder_layers == 3 and tiny.encoder_embed_dim == 128  # a flag overrides the preset
    # the decoder's sizes are written out, following the encoder's (so a saved checkpoint's config is complete)
    assert (base.decoder_layers, base.decoder_embed_dim, base.decoder_ffn_embed_dim, base.decoder_attention_heads) == (
        6,
        512,
        2048,
        8,
    )
    assert (tiny.decoder_layers, tiny.decoder_embed_dim, tiny.decoder_attention_heads) == (3, 128, 4)


def test_tiny_preset_matches_the_demo_baseline_flags():
    """scripts/run-demo.sh --baseline gives fairseq's transformer the tiny preset's sizes, written out."""
    import re
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "scripts" / "run-demo.sh").read_text()
    flags = dict(re.findall(r"--(encoder-[a-z-]+) (\d+)", script))
    tiny = PRESETS["vanilla_transformer_tiny"]
    assert int(flags["encoder-layers"]) == tiny["encoder_layers"]
    assert int(flags["encoder-embed-dim"]) == tiny["encoder_embed_dim"]
    assert int(flags["encoder-ffn-embed-dim"]) == tiny["encoder_ffn_embed_dim"]
    assert int(flags["encoder-attention-heads"]) == tiny["encoder_attention_heads"]


def test_decoder_sizes_follow_encoder_and_big_model_is_built():
    model = make_model(encoder_layers=1, decoder_layers=3)
    assert len(model.encoder.layers) == 1 and len(model.decoder.layers) == 3
    assert model.decoder.layers[0].ffn.W_1.out_features == 64
    assert model.decoder.output_projection is None  # shared with the embedding (§3.4)


def build_from_saved_config(**keys):
    """The model fairseq builds from a checkpoint's config holding only these keys beside a 1-layer, d_model 32,
    d_ff 64, h 4 encoder with shared embeddings (as older checkpoints saved them)."""
    from fairseq.models import build_model
    from omegaconf import OmegaConf

    saved = {
        "_name": "vanilla_transformer",
        "encoder_layers": 1,
        "encoder_embed_dim": 32,
        "encoder_ffn_embed_dim": 64,
        "encoder_attention_heads": 4,
        "share_all_embeddings": True,
    }
    return build_model(OmegaConf.create(saved | keys), make_task(), from_checkpoint=True)


def test_config_saved_without_decoder_sizes_builds_the_encoder_sizes():
    """A checkpoint's config saved with the decoder sizes unset (decoder_* = None) still loads: the model gets the
    encoder's sizes, as it was trained."""
    model = build_from_saved_config(decoder_layers=None, decoder_ffn_embed_dim=None)
    assert len(model.decoder.layers) == 1 and model.decoder.layers[0].ffn.W_1.out_features == 64
    assert model.decoder.layers[0].self_attn.h == 4


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("encoder_attention_heads", 5, "divisible"),
        ("encoder_layers", 0, "at least 1"),
        ("dropout", -0.1, "--dropout must be in"),
        ("decoder_embed_dim", 64, "must equal --encoder-embed-dim"),
    ],
)
def test_impossible_flags_are_named(flag, value, message):
    with pytest.raises(ValueError, match=message):
        make_model(**{flag: value})


def fraction_flag_owners():
    """(flag, a call that checks it): every flag of the plugin whose value must lie in [0, 1)."""
    from fairseq_vanilla.criterions.label_smoothed_classification import VanillaLabelSmoothedClassificationCriterion
    from fairseq_vanilla.criterions.label_smoothed_cross_entropy import VanillaLabelSmoothedCrossEntropyCriterion
    from fairseq_vanilla.models.vanilla_lstm_classifier import VanillaLSTMClassifierConfig, check_lstm_config
    from fairseq_vanilla.models.vanilla_transformer_classifier import (
        VanillaTransformerClassifier,
        VanillaTransformerClassifierConfig,
    )
    from fairseq_vanilla.tasks.text_classification import TextClassificationConfig, TextClassificationTask

    def classifier(**flags):
        return VanillaTransformerClassifier.build_model(VanillaTransformerClassifierConfig(**flags), None)

    def task(**flags):
        return TextClassificationTask.setup_task(TextClassificationConfig(data="nowhere", seed=1, **flags))

    for name in ("dropout", "attention_dropout", "activation_dropout"):
        yield name, lambda v, name=name: make_model(**{name: v})
        yield name, lambda v, name=name: classifier(**{name: v})
    yield "pooler_dropout", lambda v: classifier(pooler_dropout=v)
    for name in ("dropout", "pooler_dropout"):
        yield name, lambda v, name=name: check_lstm_config(VanillaLSTMClassifierConfig(**{name: v}))
    yield "random_deletion", lambda v: task(random_deletion=v)
    yield "random_swap", lambda v: task(random_swap=v)
    yield "label_smoothing", lambda v: VanillaLabelSmoothedCrossEntropyCriterion(make_task(), v, False)
    yield "label_smoothing", lambda v: VanillaLabelSmoothedClassificationCriterion(make_task(), v)


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_every_fraction_flag_is_one_flag_error_line(value):
    """Each flag whose value must lie in [0, 1) goes through one check: a FlagError (a ValueError for a library
    caller), which a command prints as the one line ``error: --flag must be in [0, 1), got v``."""
    owners = list(fraction_flag_owners())
    assert len(owners) == 13
    for name, check in owners:
        with pytest.raises(FlagError) as raised:
            check(value)
        assert raised.value.code == f"error: --{name.replace('_', '-')} must be in [0, 1), got {value}"
    assert check_fraction("label_smoothing", 0.0) == 0.0 and check_fraction("--dropout", 0.999) == 0.999


def batch(pad=1):
    src = torch.tensor([[pad, pad, 5, 6, 7, 2], [8, 9, 10, 11, 12, 2], [pad, 13, 14, 15, 16, 2]])
    prev = torch.tensor([[2, 20, 21, 22, 23, 24], [2, 25, 26, 27, 28, 29], [2, 17, 18, 19, 20, 21]])
    return src, src.ne(pad).sum(1), prev


def assert_incremental_equals_full_pass(model):
    """Decoding one token at a time with the cache gives the teacher-forced full pass's logits."""
    src, lengths, prev = batch()
    with torch.no_grad():
        full, _ = model(src, lengths, prev)
        enc = model.encoder(src, lengths)
        state = {}
        steps = [model.decoder(prev[:, : t + 1], enc, incremental_state=state)[0] for t in range(prev.size(1))]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_incremental_equals_full_pass(positional):
    assert_incremental_equals_full_pass(make_model(positional_encoding=positional))


@pytest.mark.parametrize("pre_norm", [False, True], ids=["post-norm", "pre-norm"])
def test_incremental_after_beam_reorder_and_finished_sentences(pre_norm):
    """Reorder the cache as beam search does (rows swapped, duplicated, one sentence dropped) mid-way."""
    model = make_model(encoder_normalize_before=pre_norm, decoder_normalize_before=pre_norm)
    src, lengths, prev = batch()
    with torch.no_grad():
        enc = model.encoder(src, lengths)
        state = {}
        for t in range(3):
            model.decoder(prev[:, : t + 1], enc, incremental_state=state)
        order = torch.tensor([2, 0, 0])  # sentence 1 finished, 0 duplicated (two beams), 2 moved first
        model.decoder.reorder_incremental_state_scripting(state, order)
        enc_r = model.encoder.reorder_encoder_out(enc, order)
        prev_r = prev.index_select(0, order)
        prev_r[2, 3:] = torch.tensor([30, 31, 32])  # the duplicated beam continues differently
        steps = [model.decoder(prev_r[:, : t + 1], enc_r, incremental_state=state)[0] for t in range(3, 6)]
        full, _ = model(src.index_select(0, order), lengths.index_select(0, order), prev_r)
    torch.testing.assert_close(torch.cat(steps, 1), full[:, 3:], atol=1e-5, rtol=1e-5)


def test_batch_composition_does_not_change_a_sentence():
    """Left padding shifts no position: a sentence gives the same logits alone and in a padded batch."""
    model = make_model()
    src, lengths, prev = batch()
    with torch.no_grad():
        full, _ = model(src, lengths, prev)
        alone, _ = model(src[:1, 2:], lengths[:1], prev[:1])
    torch.testing.assert_close(alone[0], full[0], atol=1e-5, rtol=1e-5)


def test_alignment_is_head_average_of_chosen_layer_and_rows_sum_to_one():
    model = make_model()
    src, lengths, prev = batch()
    with torch.no_grad():
        _, extra = model(src, lengths, prev, need_attn=True)
    attn = extra["attn"][0]
    assert attn.shape == (3, 6, 6)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 6), atol=1e-5, rtol=0)
    assert torch.all(attn[0, :, :2] == 0)  # padded source positions get no attention


def test_modules_import_nothing_from_fairseq():
    import ast
    from pathlib import Path

    folder = Path(fairseq_vanilla.__file__).parent / "modules"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            )
            for name in names:
                assert not name.startswith("fairseq"), f"{path.name} imports {name}"
                assert not name.startswith("torch.nn.modules.transformer"), path.name


FORBIDDEN_MODULES = (
    "fairseq.models.transformer",
    "fairseq.modules.multihead_attention",
    "fairseq.modules.transformer_layer",
    "fairseq.modules.sinusoidal_positional_embedding",
    "torch.nn.modules.transformer",
)
FORBIDDEN_NAMES = ("MultiheadAttention", "SinusoidalPositionalEmbedding")  # and torch.nn's Transformer*


def borrowed_blocks(source: str):
    """The imports and attribute uses in ``source`` (parsed, so comments and docstrings do not count) that name
    fairseq's Transformer pieces or torch.nn's Transformer*/MultiheadAttention."""
    import ast

    def dotted(node) -> str:  # the expression nn.TransformerEncoder → "nn.TransformerEncoder"
        if isinstance(node, ast.Attribute):
            return f"{dotted(node.value)}.{node.attr}"
        return node.id if isinstance(node, ast.Name) else "?"

    def borrowed(name: str) -> bool:
        parts = name.split(".")
        return (
            name.startswith(FORBIDDEN_MODULES)
            or any(p in FORBIDDEN_NAMES for p in parts)
            or any(a == "nn" and b.startswith("Transformer") for a, b in zip(parts, parts[1:]))
        )

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if borrowed(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:  # from torch.nn import Transformer
            library = (node.module or "").split(".")[0] in ("torch", "fairseq")
            found += [
                f"{node.module}.{a.name}"
                for a in node.names
                if borrowed(f"{node.module}.{a.name}") or (library and a.name.startswith("Transformer"))
            ]
        elif isinstance(node, ast.Attribute) and borrowed(dotted(node)):
            found.append(dotted(node))
    return found


def test_borrowed_blocks_are_found_in_code_not_in_comments():
    assert borrowed_blocks('# nn.Transformer, fairseq.models.transformer\n"""MultiheadAttention"""\n') == []
    assert borrowed_blocks("from fairseq.models.transformer import TransformerModel") == [
        "fairseq.models.transformer.TransformerModel"
    ]
    assert borrowed_blocks("from torch.nn import MultiheadAttention as M") == ["torch.nn.MultiheadAttention"]
    assert borrowed_blocks("from torch.nn import TransformerEncoderLayer") == ["torch.nn.TransformerEncoderLayer"]
    assert borrowed_blocks("import fairseq.modules.multihead_attention") == ["fairseq.modules.multihead_attention"]
    assert borrowed_blocks("from torch import nn\nlayer = nn.TransformerEncoderLayer(8, 2)") == [
        "nn.TransformerEncoderLayer"
    ]
    assert borrowed_blocks("from fairseq.modules import SinusoidalPositionalEmbedding") == [
        "fairseq.modules.SinusoidalPositionalEmbedding"
    ]
    assert borrowed_blocks("from ctranslate2.specs import transformer_spec\ntransformer_spec.TransformerSpec") == []


def test_no_forbidden_building_blocks_used():
    """Neither fairseq's Transformer pieces nor torch.nn.Transformer*/MultiheadAttention are imported or used in the
    package's code."""
    from pathlib import Path

    folder = Path(fairseq_vanilla.__file__).parent
    for path in folder.rglob("*.py"):
        assert borrowed_blocks(path.read_text()) == [], path


def test_preset_fills_only_the_flags_not_given():
    """A preset fills every flag the user did not give, with its own value or else the config's default; the flags
    given stay (also where the preset has another value), and the decoder sizes not given follow the encoder's."""
    big = PRESETS["vanilla_transformer_big"]
    args = argparse.Namespace(encoder_layers=4, dropout=0.2)  # the preset says dropout 0.3
    apply_preset(args, big)
    defaults = VanillaTransformerConfig()
    expected = {f.name: getattr(defaults, f.name) for f in fields(VanillaTransformerConfig)}
    expected.update(big)
    expected.update(encoder_layers=4, dropout=0.2)
    expected.update(decoder_layers=4, decoder_embed_dim=1024, decoder_ffn_embed_dim=4096, decoder_attention_heads=16)
    assert vars(args) == expected


def test_bf16_autocast_on_cpu_trains_without_nan_even_with_an_all_padding_row():
    """bf16 numerics on the CPU: a bf16-autocast forward/backward gives finite loss and gradients, also when one
    source row is nothing but padding (fully masked attention rows give 0, not NaN)."""
    model = make_model(dropout=0.1).train()
    pad = model.encoder.padding_idx
    src = torch.randint(4, 30, (3, 7))
    src[2] = pad  # a source that is all padding
    prev = torch.randint(4, 30, (3, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(src, torch.tensor([7, 7, 0]), prev)
    assert logits.dtype == torch.bfloat16
    loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), prev.view(-1))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    fp32, _ = make_model(dropout=0.0)(src, torch.tensor([7, 7, 0]), prev)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = make_model(dropout=0.0)(src, torch.tensor([7, 7, 0]), prev)
    assert torch.isfinite(fp32).all() and torch.isfinite(bf16).all()
    # the sentences with a real source agree (bf16 keeps ~3 significant digits); the all-padding source's
    # cross-attention is uniform in the fused kernel (the fp32 step), zero in the plain formula (the bf16 step)
    assert (bf16.float() - fp32)[:2].abs().max() < 0.5
