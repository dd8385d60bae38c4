"""One source of truth for the derived sizes: the model, the memory planner and the table renderer agree on d_k, d_v
and the decoder's sizes for every Table 3 row (both scales) and every preset, all read from models/config.py."""

import pytest
import torch
from fairseq import options

import fairseq_vanilla  # noqa: F401  (registers)
from conftest import ROOT
from fairseq_vanilla.experiments.memory.planner import PLANNER_FLAGS, size_from_arch
from fairseq_vanilla.experiments.table import spec as T
from fairseq_vanilla.experiments.table.tasks import translation as TR
from fairseq_vanilla.models.config import PRESETS, head_dims
from fairseq_vanilla.models.vanilla_transformer import VanillaTransformerModel
from tests.test_model import make_task

TABLE = T.load_table(str(ROOT / "examples" / "table3" / "table3.yaml"))
TRANSFORMER_ROWS = [row for row in TABLE["rows"] if not row.get("stock") and "arch" not in row]


def parse(flags):
    """The flags as fairseq-train parses them (the preset fills what they leave unset)."""
    parser = options.get_training_parser()
    return options.parse_args_and_arch(
        parser, ["DATA", "--task", "translation", "--criterion", "label_smoothed_cross_entropy", *flags]
    )


def model_sizes(args):
    """What the built model has: per side, layers and the first layer's h, d_k, d_v, d_ff (built on the meta device:
    no memory, any size)."""
    with torch.device("meta"):
        model = VanillaTransformerModel.build_model(args, make_task())
    sizes = {}
    for side in ("encoder", "decoder"):
        layers = getattr(model, side).layers
        attn = layers[0].self_attn
        sizes[side] = (len(layers), attn.d_model, attn.h, attn.d_k, attn.d_v, layers[0].ffn.W_1.out_features)
    assert {tuple(m.d_k for m in (layer.cross_attn,)) for layer in model.decoder.layers} == {(sizes["decoder"][3],)}
    return sizes


def planner_sizes(args):
    size = size_from_arch(args.arch, 100, True, **{name: getattr(args, name) for name in PLANNER_FLAGS})
    return {
        "encoder": (size.N_enc, size.d_model, size.h, size.d_k, size.d_v, size.d_ff),
        "decoder": (size.N_dec, size.d_model, size.h, size.d_k, size.d_v, size.d_ff),
    }


def rendered_sizes(symbols):
    """The renderer's N, d_model, h, d_k, d_v, d_ff columns for a result file holding these symbols."""
    fake = {"symbols": symbols, "ppl": 5.0, "bleu": 30.0, "chrf": 50.0, "params": 1, "train_seconds": 60}
    line = TR.table_rows({"rows": [{"id": "x", "row": "x", "variant": "x"}]}, {("x", 1): {**fake, "versions": {}}})[0]
    return tuple(line[k] for k in ("N", "d_model", "h", "d_k", "d_v", "d_ff"))


@pytest.mark.parametrize("scale", ["multi30k", "paper"])
@pytest.mark.parametrize("row", TRANSFORMER_ROWS, ids=lambda row: row["id"])
def test_model_planner_and_table_agree_on_every_row(row, scale):
    symbols = T.row_symbols(TABLE, row, scale)
    args = parse(T.train_flags(TABLE, row, scale, seed=1))
    model = model_sizes(args)
    assert model == planner_sizes(args)
    assert model["encoder"] == model["decoder"] == rendered_sizes(symbols)
    d_k, d_v = head_dims(symbols["d_model"], symbols["h"], symbols["d_k"], symbols["d_v"])
    assert model["encoder"] == (symbols["N"], symbols["d_model"], symbols["h"], d_k, d_v, symbols["d_ff"])


def test_head_dims_by_hand():
    assert head_dims(512, 8) == (64, 64)  # the paper's base: d_k = d_v = d_model/h = 64 (§3.2.2)
    assert head_dims(512, 8, 16, None) == (16, 64)  # Table 3 row B: d_k alone changes
    assert head_dims(512, 1, 512, 512) == (512, 512)  # row A, h = 1


@pytest.mark.parametrize("arch", sorted(PRESETS))
def test_model_and_planner_agree_on_every_preset(arch):
    args = parse(["--arch", arch])
    assert model_sizes(args) == planner_sizes(args)


def test_decoder_flags_apart_from_the_encoder_reach_model_and_planner():
    args = parse(["--arch", "vanilla_transformer_tiny", "--decoder-layers", "3", "--attention-key-dim", "8"])
    model, planner = model_sizes(args), planner_sizes(args)
    assert model["decoder"][0] == planner["decoder"][0] == 3 and model["encoder"][0] == 2
    assert model["decoder"][2:5] == planner["decoder"][2:5] == (4, 8, 32)  # h 4, d_k 8 given, d_v = 128/4
