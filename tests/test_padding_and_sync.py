"""Target padding is masked in decoder self-attention (causal and full-context passes, right and left padding), and
the forward pass never waits for the device (no .any() on masks, no positions.max())."""

import contextlib

import pytest
import torch
from fairseq.data import Dictionary

from fairseq_vanilla.models.decoder import VanillaTransformerDecoder
from fairseq_vanilla.models.encoder import VanillaTransformerEncoder
from fairseq_vanilla.modules import SideSizes, SinusoidalPositionalEncoding, TokenEmbedding, sinusoid_table

D_MODEL, H, D_FF, N = 16, 2, 32, 2


def tiny_model(seed=0):
    """A 2-layer encoder and decoder over a 20-symbol dictionary, in eval mode (no dropout)."""
    torch.manual_seed(seed)
    d = Dictionary()
    for i in range(16):
        d.add_symbol(f"w{i}")
    embed = TokenEmbedding(len(d), D_MODEL, d.pad())
    sizes = SideSizes(N=N, d_model=D_MODEL, d_ff=D_FF, h=H, P_drop=0.1, attention_dropout=0.1)
    encoder = VanillaTransformerEncoder(d, embed, sizes, "sinusoidal", max_positions=8).eval()
    decoder = VanillaTransformerDecoder(
        d, embed, sizes, share_input_output_embed=True, positional_encoding="sinusoidal", max_positions=8
    ).eval()
    return d, encoder, decoder


def pad(rows, pad_idx, width, left):
    """Rows of token ids → ``(B, width)``, padded on the left or the right."""
    out = torch.full((len(rows), width), pad_idx, dtype=torch.long)
    for i, row in enumerate(rows):
        if left:
            out[i, width - len(row) :] = torch.tensor(row)
        else:
            out[i, : len(row)] = torch.tensor(row)
    return out


@pytest.mark.parametrize("full_context", [False, True], ids=["causal", "full_context"])
@pytest.mark.parametrize("left", [False, True], ids=["right_padded", "left_padded"])
def test_padded_and_unpadded_targets_give_the_same_outputs(full_context, left):
    d, encoder, decoder = tiny_model()
    source = torch.tensor([[5, 6, 7, 8, d.eos()]])
    target = [d.eos(), 9, 10, 11]  # prev_output_tokens of a 4-token target
    with torch.no_grad():
        memory = encoder(source)
        alone, _ = decoder(torch.tensor([target]), memory, full_context_alignment=full_context)  # (1, 4, V)
        memory2 = encoder.reorder_encoder_out(memory, torch.tensor([0, 0]))
        padded = pad([target, [d.eos(), 12, 13, 14, 15, 9]], d.pad(), 6, left)  # (2, 6): row 0 has 2 pads
        batch, _ = decoder(padded, memory2, full_context_alignment=full_context)  # (2, 6, V)
    real = batch[0, 2:] if left else batch[0, :4]
    torch.testing.assert_close(real, alone[0], atol=1e-5, rtol=1e-5)


def test_weights_path_masks_target_padding_too():
    """The plain formula (asked for per-head weights) gives real positions zero weight on target pads."""
    d, encoder, decoder = tiny_model()
    tokens = pad([[d.eos(), 9, 10, 11]], d.pad(), 6, left=False)
    with torch.no_grad():
        _, extra = decoder(
            tokens, encoder(torch.tensor([[5, 6, d.eos()]])), full_context_alignment=True, return_all_attention=True
        )
    for weights in extra["self_attention"]:  # N × (B, h, T, T)
        assert torch.all(weights[0, :, :4, 4:] == 0)


class NoHostSync(contextlib.ContextDecorator):
    """Make every tensor → Python conversion (bool, int, float, item, tolist, any/all reductions read on the host)
    raise: on the CPU, the calls that on a GPU wait for the device."""

    NAMES = ("__bool__", "__int__", "__float__", "__index__", "item", "tolist")

    def __enter__(self):
        self.saved = {name: getattr(torch.Tensor, name) for name in self.NAMES}

        def refuse(self_, *args, **kwargs):
            raise AssertionError("host synchronisation in forward")

        for name in self.NAMES:
            setattr(torch.Tensor, name, refuse)
        return self

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(torch.Tensor, name, fn)
        return False


def forward_all(encoder, decoder, d, source, target):
    """Encoder, full decoder pass (causal and full-context), then three incremental steps; returns the outputs."""
    memory = encoder(source)
    outs = [decoder(target, memory)[0], decoder(target, memory, full_context_alignment=True)[0]]
    state = {}
    for step in range(1, 4):
        outs.append(decoder(target[:, :step], memory, incremental_state=state)[0])
    return outs


def test_forward_has_no_host_synchronisation_and_outputs_are_unchanged():
    d, encoder, decoder = tiny_model()
    source = pad([[5, 6, 7, d.eos()], [8, d.eos()]], d.pad(), 4, left=True)
    target = pad([[d.eos(), 9, 10, 11], [d.eos(), 12]], d.pad(), 4, left=False)
    with torch.no_grad():
        reference = forward_all(encoder, decoder, d, source, target)
        with NoHostSync():
            checked = forward_all(encoder, decoder, d, source, target)
    for a, b in zip(reference, checked):
        assert torch.equal(a, b)
    # no padding at all: the masks that are now always passed (all False) change nothing against no mask
    source, target = source[:1], target[:1]
    with torch.no_grad():
        memory = encoder(source)
        with_mask = decoder(target, memory)[0]
        x = decoder.embed_tokens(target) + decoder.embed_positions(torch.arange(4)[None])  # (1, 4, d_model)
        for layer in decoder.layers:  # no memory mask, no target mask: the old path for a batch without padding
            x = layer(x, memory["encoder_out"][0], None)[0]
    torch.testing.assert_close(with_mask, decoder.output_layer(x), atol=1e-6, rtol=1e-6)


def test_positional_table_grows_from_the_sequence_length():
    enc = SinusoidalPositionalEncoding(6, max_positions=4)
    positions = torch.arange(9)[None]  # (1, 9)
    with NoHostSync():
        out = enc(positions)
    torch.testing.assert_close(out[0], sinusoid_table(9, 6))
    assert enc.table.size(0) >= 9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.set_sync_debug_mode checks GPU syncs")
def test_forward_on_cuda_under_sync_debug_mode_error():
    d, encoder, decoder = tiny_model()
    encoder, decoder = encoder.cuda(), decoder.cuda()
    source = pad([[5, 6, 7, d.eos()], [8, d.eos()]], d.pad(), 4, left=True).cuda()
    target = pad([[d.eos(), 9, 10, 11], [d.eos(), 12]], d.pad(), 4, left=False).cuda()
    with torch.no_grad():
        forward_all(encoder, decoder, d, source, target)  # warm-up: lazy initialisation may sync once
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            forward_all(encoder, decoder, d, source, target)
        finally:
            torch.cuda.set_sync_debug_mode("default")
