"""Pre-norm (--encoder-normalize-before, --decoder-normalize-before; Xiong et al. 2020) and --positional-encoding none:
the layers against their formulas, incremental = full decoding, post-norm configs saved before the flags, an encoder
without positions permutation-equivariant, and both flags through the stock fairseq-train and fairseq-generate."""

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY_TRAIN_FLAGS, USER_DIR, fairseq
from fairseq_vanilla.fairseq_fixes.checkpoint_safety import safe_torch_load
from fairseq_vanilla.modules import DecoderLayer, EncoderLayer, SideSizes
from test_model import assert_incremental_equals_full_pass, build_from_saved_config, make_model, make_task, parse_arch

PRE_NORM = dict(encoder_normalize_before=True, decoder_normalize_before=True)
PRE_NORM_LAYER = SideSizes(N=1, d_model=8, d_ff=16, h=2, P_drop=0.0, pre_norm=True)  # d_k = d_v = 4


def randomise_norms(module: torch.nn.Module) -> None:
    """LayerNorm gains and biases away from 1 and 0, so that where a norm is applied shows in the output."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "layer_norm" in name:
                p.add_(0.5 * torch.randn_like(p))


def test_pre_norm_layers_are_x_plus_sublayer_of_layernorm_x():
    """Encoder: x ← x + SelfAttn(LN₁(x)); x ← x + FFN(LN₂(x)). Decoder: the same with masked self-attention,
    cross-attention on LN₂(x) over the memory as given, and the FFN on LN₃(x). The post-norm layer is not that."""
    torch.manual_seed(0)
    x, memory = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
    enc = EncoderLayer(PRE_NORM_LAYER).eval()
    randomise_norms(enc)
    ln1, ln2 = enc.self_attn_residual.layer_norm, enc.ffn_residual.layer_norm
    with torch.no_grad():
        y = x + enc.self_attn(ln1(x), ln1(x))[0]
        expected = y + enc.ffn(ln2(y))
        torch.testing.assert_close(enc(x)[0], expected)
        post = EncoderLayer(dataclasses.replace(PRE_NORM_LAYER, pre_norm=False)).eval()
        post.load_state_dict(enc.state_dict())  # the same parameter names, the norms elsewhere
        assert not torch.allclose(post(x)[0], expected, atol=1e-3)

    dec = DecoderLayer(PRE_NORM_LAYER).eval()
    randomise_norms(dec)
    ln1, ln2, ln3 = (getattr(dec, f"{s}_residual").layer_norm for s in ("self_attn", "cross_attn", "ffn"))
    with torch.no_grad():
        y = x + dec.self_attn(ln1(x), ln1(x), causal=True)[0]
        y = y + dec.cross_attn(ln2(y), memory)[0]
        torch.testing.assert_close(dec(x, memory)[0], y + dec.ffn(ln3(y)))


def test_each_stack_ends_with_a_layernorm_and_only_pre_norm_has_it():
    """The encoder's output and the decoder's features are LayerNorm(last layer's output); the two final norms are the
    only parameters pre-norm adds: 2 × (gain + bias) = 4·d_model."""
    post, pre = make_model(), make_model(**PRE_NORM)
    randomise_norms(pre)
    added = set(pre.state_dict()) - set(post.state_dict())
    assert added == {f"{side}.layer_norm.{p}" for side in ("encoder", "decoder") for p in ("weight", "bias")}
    assert set(post.state_dict()) <= set(pre.state_dict())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(pre) - count(post) == 4 * 32
    src, prev = torch.tensor([[5, 6, 7, 2]]), torch.tensor([[2, 8, 9]])
    with torch.no_grad():
        enc = pre.encoder(src)
        x = pre.encoder.input_embedding(src, torch.arange(4)[None])  # (1, 4, 32)
        for layer in pre.encoder.layers:
            x = layer(x)[0]
        torch.testing.assert_close(enc["encoder_out"][0], pre.encoder.layer_norm(x))
        features, extra = pre.decoder(prev, enc, features_only=True)
        torch.testing.assert_close(features, pre.decoder.layer_norm(extra["inner_states"][-1]))


@pytest.mark.parametrize("flags", [PRE_NORM, {"decoder_normalize_before": True}], ids=["both", "decoder"])
def test_pre_norm_incremental_equals_full_pass(flags):
    model = make_model(**flags)
    randomise_norms(model)
    assert_incremental_equals_full_pass(model)


def test_post_norm_config_saved_before_the_flags_loads_its_weights():
    """A checkpoint's config without the normalize-before keys builds the post-norm model; its weights load
    strictly (no final LayerNorm expected)."""
    old = make_model(encoder_layers=1)
    model = build_from_saved_config(positional_encoding="sinusoidal")
    model.load_state_dict(old.state_dict(), strict=True)
    assert model.encoder.layer_norm is None and model.decoder.layer_norm is None


def test_flags_parse_on_each_architecture():
    tiny = parse_arch("--arch", "vanilla_transformer_tiny", "--encoder-normalize-before", "--decoder-normalize-before")
    assert tiny.encoder_normalize_before and tiny.decoder_normalize_before
    base = parse_arch("--arch", "vanilla_transformer_align", "--positional-encoding", "none")
    assert not base.encoder_normalize_before and not base.decoder_normalize_before
    assert base.positional_encoding == "none"


def test_classifier_takes_encoder_normalize_before():
    from fairseq import options

    from fairseq_vanilla.models.vanilla_transformer_classifier import (
        VanillaTransformerClassifier,
        VanillaTransformerClassifierConfig,
    )

    argv = ["/nonexistent", "--user-dir", "fairseq_vanilla", "--task", "imdb_classification"]
    argv += ["--arch", "vanilla_transformer_classifier_tiny", "--encoder-normalize-before"]
    assert options.parse_args_and_arch(options.get_training_parser(), argv).encoder_normalize_before
    task = SimpleNamespace(source_dictionary=make_task().source_dictionary, num_classes=2)
    cfg = VanillaTransformerClassifierConfig(
        encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_attention_heads=2, encoder_layers=1, dropout=0.0
    )
    assert VanillaTransformerClassifier.build_model(cfg, task).encoder.layer_norm is None
    cfg.encoder_normalize_before = True
    model = VanillaTransformerClassifier.build_model(cfg, task).eval()
    assert type(model.encoder.layers[0].ffn_residual).__name__ == "PreNormResidual"
    src = torch.tensor([[0, 5, 6, 7, 2]])
    with torch.no_grad():
        out = model.encoder(src)["encoder_out"][0]  # (1, 5, 16): normalised by the final LayerNorm
    torch.testing.assert_close(out.mean(-1), torch.zeros(1, 5), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pre_norm", [False, True], ids=["post-norm", "pre-norm"])
def test_encoder_without_positions_is_permutation_equivariant(pre_norm):
    """Permuting the source tokens permutes the encoder's outputs the same way (dropout off): without a position
    signal self-attention sees a set. With the sinusoidal encoding (§3.5) it does not."""
    flags = dict(encoder_normalize_before=pre_norm)
    model = make_model(positional_encoding="none", **flags)
    assert model.encoder.embed_positions is None
    src = torch.tensor([[5, 6, 7, 8, 9, 2], [10, 11, 12, 13, 14, 2]])
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        out = model.encoder(src)["encoder_out"][0]  # (2, 6, 32)
        permuted = model.encoder(src[:, perm])["encoder_out"][0]
        torch.testing.assert_close(permuted, out[:, perm], atol=1e-5, rtol=1e-5)
        sinusoidal = make_model(**flags).encoder
        with_positions = sinusoidal(src[:, perm])["encoder_out"][0]
        assert not torch.allclose(with_positions, sinusoidal(src)["encoder_out"][0][:, perm], atol=1e-3)


def test_stock_fairseq_train_and_generate_with_pre_norm(prenorm_checkpoint, prenorm_generated):
    state = safe_torch_load(str(prenorm_checkpoint))
    cfg = state["cfg"]["model"]
    assert cfg["encoder_normalize_before"] and cfg["decoder_normalize_before"]
    assert {"encoder.layer_norm.weight", "decoder.layer_norm.weight"} <= set(state["model"])
    log = (prenorm_checkpoint.parent / "train.log").read_text()
    assert "PreNormResidual" in log and "num_updates 6" in log
    hyps = [line.split("\t") for line in prenorm_generated.splitlines() if line.startswith("H-")]
    assert sorted(int(h[0][2:]) for h in hyps) == list(range(61))
    assert all(h[2].strip() for h in hyps)  # every sentence translated into at least one word


def test_stock_fairseq_train_without_positions(tiny_corpus, tmp_path):
    """--positional-encoding none trains (two updates, finite loss) and saves no position table."""
    proc = fairseq(
        "fairseq-train", tiny_corpus, "--user-dir", USER_DIR, *TINY_TRAIN_FLAGS, "--positional-encoding", "none",
        "--max-update", 2, "--disable-validation", "--save-dir", tmp_path,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert "num_updates 2" in log and " loss nan" not in log
    state = safe_torch_load(str(tmp_path / "checkpoint_last.pt"))
    assert state["cfg"]["model"]["positional_encoding"] == "none"
    assert not any("embed_positions" in k for k in state["model"])
