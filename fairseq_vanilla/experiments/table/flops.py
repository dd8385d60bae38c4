"""Training FLOPs per target token of a table row, estimated from its layer sizes: 2 FLOPs for each multiply-add of
every matrix product and of attention's weighted sums, ×3 for training (the backward pass computes the gradients
of both a product's inputs and its weights: twice the forward), at the training set's mean source and target
lengths. Not counted: embedding lookups, nonlinearities, normalisation (post-norm's LayerNorms, or pre-norm's with
each stack's final one alike), softmax, dropout, biases, and padding (a batch's sentences are counted at their own
lengths). The forward count agrees to the FLOP with torch's
``FlopCounterMode`` on the built models (tests/test_flops.py; Luong attention's element-wise products, which the
counter does not see, added by hand)."""

import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Tuple

from ...text.io import atomic_write
from . import spec as T

if TYPE_CHECKING:
    from ...modules.sizes import SideSizes

TRAINING_PER_FORWARD = 3  # forward + backward (input and weight gradients)


def transformer_macs(enc: "SideSizes", dec: "SideSizes", vocab: int, src_len: float, tgt_len: float) -> float:
    """Forward multiply-adds per target token of the Transformer (§3.1–3.3): per layer Q, K, V and output
    projections, QKᵀ and the weighted sum of V over every key, the two FFN products; the decoder's cross-attention
    projects the encoder's output to K and V per source token; the output projection to the vocabulary."""
    proj = lambda s: s.d_model * s.h * (2 * s.d_k + s.d_v) + s.h * s.d_v * s.d_model  # noqa: E731  Q, K, V, W^O
    attend = lambda s, keys: keys * s.h * (s.d_k + s.d_v)  # noqa: E731  QKᵀ and (weights)·V for one query
    ffn = lambda s: 2 * s.d_model * s.d_ff  # noqa: E731
    per_source = enc.N * (proj(enc) + attend(enc, src_len) + ffn(enc))
    per_source += dec.N * enc.d_model * dec.h * (dec.d_k + dec.d_v)  # cross-attention's K, V of each source token
    cross_q_out = dec.d_model * dec.h * dec.d_k + dec.h * dec.d_v * dec.d_model
    per_target = dec.N * (proj(dec) + attend(dec, tgt_len) + cross_q_out + attend(dec, src_len) + ffn(dec))
    per_target += dec.d_model * vocab
    return per_target + per_source * src_len / tgt_len


def _flag_value(text: Any) -> Any:
    """A flag fairseq evaluates as Python (``"[(512, 3)] * 20"``, ``"1"``, ``"True"``), evaluated the same way."""
    return eval(str(text), {"__builtins__": {}})


def lstm_step_macs(inputs: int, hidden: int) -> int:
    """One LSTM step: the four gates' products W·x and U·h (Hochreiter & Schmidhuber 1997)."""
    return 4 * hidden * (inputs + hidden)


def lstm_macs(a: Dict[str, Any], vocab: int, src_len: float, tgt_len: float) -> float:
    """Forward multiply-adds per target token of fairseq's ``lstm``: the encoder's (bi)LSTM over the source; the
    decoder's LSTM cells with input feeding, Luong attention's input and output projections and its two weighted sums
    over the source, the extra projection to the output size and the output projection; the bridge from the
    encoder's final states to the decoder's first, once a sentence. ``a``: fairseq's parsed flags."""
    E, H, L = a["encoder_embed_dim"], a["encoder_hidden_size"], a["encoder_layers"]
    directions = 2 if a["encoder_bidirectional"] else 1
    enc_out = H * directions
    per_source = sum(directions * lstm_step_macs(E if i == 0 else enc_out, H) for i in range(L))
    D, Hd, Ld, out = a["decoder_embed_dim"], a["decoder_hidden_size"], a["decoder_layers"], a["decoder_out_embed_dim"]
    per_target = sum(lstm_step_macs(D + Hd if i == 0 else Hd, Hd) for i in range(Ld))  # layer 0 is input-fed
    if _flag_value(a["decoder_attention"]):
        per_target += Hd * enc_out + 2 * src_len * enc_out + (enc_out + Hd) * Hd
    per_target += (Hd * out if Hd != out else 0) + out * vocab
    per_sentence = 2 * Ld * enc_out * Hd if enc_out != Hd else 0  # h and c of every decoder layer
    return per_target + per_source * src_len / tgt_len + per_sentence / tgt_len


def glu_conv_macs(kernel: int, inputs: int, out: int) -> int:
    """One position of a convolution to 2 × ``out`` channels (GLU halves them) over ``kernel`` positions."""
    return kernel * inputs * 2 * out


def conv_stack_macs(first: int, layers: Sequence[Tuple[int, ...]]) -> Tuple[float, List[int]]:
    """Multiply-adds per position of fairseq's gated convolutions (Gehring et al. 2017): each layer's convolution to
    2 × its channels (GLU) over its kernel width, and the projection of a residual whose width differs; returns them
    and each layer's output width."""
    macs, widths, width = 0, [first], first
    for spec in layers:
        out, kernel, residual = (*spec, 1)[:3]
        if residual and widths[-residual] != out:
            macs += widths[-residual] * out
        macs += glu_conv_macs(kernel, width, out)
        widths.append(out)
        width = out
    return macs, widths[1:]


def fconv_macs(a: Dict[str, Any], vocab: int, src_len: float, tgt_len: float) -> float:
    """Forward multiply-adds per target token of fairseq's ``fconv``: the encoder's embedding projections and
    convolutions; the decoder's, each causal convolution also over its k − 1 positions of left padding (computed,
    then cut), each attention layer's two projections and two weighted sums over the source; the output projections."""
    E, enc = a["encoder_embed_dim"], _flag_value(a["encoder_layers"])
    enc_conv, enc_widths = conv_stack_macs(enc[0][0], enc)
    per_source = E * enc[0][0] + enc_conv + enc_widths[-1] * E
    D, dec, out = a["decoder_embed_dim"], _flag_value(a["decoder_layers"]), a["decoder_out_embed_dim"]
    attention = _flag_value(a["decoder_attention"])
    attention = attention if isinstance(attention, list) else [attention] * len(dec)
    per_target, width = D * dec[0][0], dec[0][0]
    for spec, attends in zip(dec, attention):
        conv, (width_out,) = conv_stack_macs(width, [spec])
        per_target += conv + (spec[1] - 1) * glu_conv_macs(spec[1], width, width_out) / tgt_len
        if attends:
            per_target += 2 * width_out * D + 2 * src_len * D
        width = width_out
    per_target += width * out + out * vocab
    return per_target + per_source * src_len / tgt_len


def forward_macs(args: Dict[str, Any], vocab: int, src_len: float, tgt_len: float) -> float:
    """Forward multiply-adds per target token of the model fairseq builds from ``args`` (its parsed flags)."""
    from ...models.config import side_sizes  # fairseq: imported when a count is made, not with the table driver

    arch = args["arch"]
    if arch.startswith("vanilla_transformer"):
        enc, dec = side_sizes(args, "encoder"), side_sizes(args, "decoder")
        return transformer_macs(enc, dec, vocab, src_len, tgt_len)
    if arch.startswith("lstm"):
        return lstm_macs(args, vocab, src_len, tgt_len)
    if arch.startswith("fconv"):
        return fconv_macs(args, vocab, src_len, tgt_len)
    raise ValueError(f"no FLOPs count for architecture {arch!r}")


def parsed_flags(flags: Sequence[str]) -> Dict[str, Any]:
    """A row's training flags as fairseq-train parses them, the architecture's defaults filled in."""
    from fairseq import options

    from ... import register

    register()  # our architectures and their flags
    parser = options.get_training_parser()
    args, _ = options.parse_args_and_arch(
        parser, ["DATA", "--task", "translation", "--criterion", "cross_entropy", *flags], parse_known=True
    )
    return vars(args)


def corpus_lengths(prepared: str) -> Dict[str, float]:
    """The vocabulary size and the mean source and target lengths in tokens (end-of-sentence included) of the
    training split of a prepared folder (``bin/``), as fairseq reads them."""
    from fairseq.data import Dictionary, data_utils

    bin_dir = os.path.join(prepared, "bin")
    prefix = next(
        n[: -len(".idx")] for n in sorted(os.listdir(bin_dir)) if n.startswith("train.") and n.endswith(".idx")
    )
    pair = prefix.split(".")[1]  # train.en-de.en → en-de
    src, tgt = pair.split("-")
    sizes = {}
    for lang in (src, tgt):
        ds = data_utils.load_indexed_dataset(os.path.join(bin_dir, f"train.{pair}.{lang}"), None)
        sizes[lang] = float(ds.sizes.mean())
    vocab = len(Dictionary.load(os.path.join(bin_dir, f"dict.{tgt}.txt")))
    return {"vocab": vocab, "source_tokens": sizes[src], "target_tokens": sizes[tgt]}


def training_flops(flags: Sequence[str], corpus: Dict[str, float]) -> Dict[str, float]:
    """The ``flops`` entry of a result file: training FLOPs per target token and what it was computed at."""
    macs = forward_macs(parsed_flags(flags), corpus["vocab"], corpus["source_tokens"], corpus["target_tokens"])
    return {"training_per_target_token": 2 * TRAINING_PER_FORWARD * macs, **corpus}


def fill_flops(found: Dict[Tuple[str, int], Dict[str, Any]], results: str, prepared: str, skip=()) -> List[str]:
    """Give every translation result that has none its ``flops`` entry (:func:`training_flops`, at ``prepared``'s
    training split), in ``found`` (the result files of ``results``, as :func:`.spec.table_results` reads them) and
    written back into its file; returns the row ids filled. Rows in ``skip`` (reused from another table's results,
    whose files are not this table's to write) and rows of an architecture :func:`forward_macs` does not count are
    left as they are."""
    filled, corpus = [], None
    for (row_id, seed), r in sorted(found.items()):
        if row_id in skip or "flops" in r or "flags" not in r:
            continue
        corpus = corpus or corpus_lengths(prepared)
        try:
            r["flops"] = training_flops(r["flags"], corpus)
        except ValueError:  # an architecture with no count here: its column stays empty, the table is still built
            continue
        with atomic_write(os.path.join(results, T.result_name(row_id, seed))) as f:
            json.dump(r, f, indent=1, ensure_ascii=False)
        filled.append(row_id)
    return filled
