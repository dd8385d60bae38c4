"""Attention out of the model, the alignment loss and symmetrisation against hand-computed values."""

import json
import math
import re
import subprocess
import sys
from argparse import Namespace

import pytest
import torch

from conftest import ROOT, USER_DIR, fairseq
from fairseq_vanilla.criterions import alignment_nll_loss
from fairseq_vanilla.evaluation.alignment import agreement, grow_diag_final_and, parse_links
from fairseq_vanilla.modules import DecoderLayer, SideSizes


def test_alignment_nll_loss_hand_computed():
    # two target rows over three source positions
    attn = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    # links (source, target row): target 0 ↔ source 0 and 1 (weights ½ each); target 1 ↔ source 2 (weight 1)
    links = torch.tensor([[0, 0], [1, 0], [2, 1]])
    weights = torch.tensor([0.5, 0.5, 1.0])
    expected = -(0.5 * math.log(0.5) + 0.5 * math.log(0.25) + 1.0 * math.log(0.7))
    assert alignment_nll_loss(attn, links, weights).item() == pytest.approx(expected, rel=1e-6)
    # a link onto a zero probability stays finite
    assert math.isfinite(alignment_nll_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1, 0]]), torch.ones(1)).item())


def test_alignment_layout_and_weights_from_fairseq_collater():
    """What our criterion relies on, from fairseq's own collate: links as (source column, row of the flattened
    B·T target), left-pad offsets added, align_weights = 1 / (links of the target word)."""
    from fairseq.data.language_pair_dataset import collate

    pad, eos = 1, 2
    samples = [
        {
            "id": 0,
            "source": torch.tensor([5, 6, 7, eos]),
            "target": torch.tensor([8, 9, 10, eos]),
            "alignment": torch.tensor([0, 0, 1, 0, 2, 2]),
        },  # links 0-0 1-0 2-2
        {
            "id": 1,
            "source": torch.tensor([5, 6, eos]),
            "target": torch.tensor([8, eos]),
            "alignment": torch.tensor([1, 0]),
        },  # link 1-0
    ]
    batch = collate(samples, pad, eos, left_pad_source=True, left_pad_target=False)
    # sorted by source length: sample 0 (4 tokens) first; sample 1's source is left-padded by 1, its rows start at T=4
    assert batch["alignments"].tolist() == [[0, 0], [1, 0], [2, 2], [1 + 1, 4 + 0]]
    assert batch["align_weights"].tolist() == [0.5, 0.5, 1.0, 1.0]


def test_grow_diag_final_and_hand_worked():
    fwd = parse_links("0-0 1-1 2-1 3-3")
    rev = parse_links("0-0 1-1 1-2 3-2")
    # union {0-0 1-1 2-1 3-3 1-2 3-2}, start from the intersection {0-0 1-1}. Grow around 1-1: 2-1 (source 2
    # unaligned), 1-2 (target 2 unaligned); around 2-1: the diagonal 3-2 (source 3 unaligned); around 3-2: 3-3
    # (target 3 unaligned). Every union link is reached.
    assert grow_diag_final_and(fwd, rev) == parse_links("0-0 1-1 2-1 1-2 3-2 3-3")
    # a union link whose words are both aligned already is not grown into: 1-0 (fwd only)
    assert grow_diag_final_and(parse_links("0-0 1-1 1-0"), parse_links("0-0 1-1")) == parse_links("0-0 1-1")
    # final-and adds a link only when both its words are unaligned
    assert grow_diag_final_and(parse_links("0-0 5-5"), parse_links("0-0")) == parse_links("0-0 5-5")
    with pytest.raises(ValueError, match="malformed alignment link '3:4'"):
        parse_links("0-0 3:4")


def test_agreement_precision_recall_aer():
    pred = [parse_links("0-0 1-1 2-2"), parse_links("0-1")]
    ref = [parse_links("0-0 1-1 2-1 3-3"), parse_links("0-1")]
    s = agreement(pred, ref)
    # hits 3 of 4 predicted, of 5 reference links
    assert s["precision"] == pytest.approx(3 / 4)
    assert s["recall"] == pytest.approx(3 / 5)
    assert s["aer"] == pytest.approx(1 - 2 * 3 / (4 + 5))
    with pytest.raises(ValueError, match="2 predicted alignments but 1 reference"):
        agreement(pred, ref[:1])


def _tiny_decoder_model(arch="vanilla_transformer", **extra):
    """A 2-layer model, every dropout 0 (the functional dropouts of embeddings, sub-layers, attention weights and
    FFN): it computes the same in training and evaluation mode."""
    from fairseq.data import Dictionary

    from fairseq_vanilla.models.config import apply_preset
    from fairseq_vanilla.models.vanilla_transformer import VanillaTransformerModel
    from fairseq_vanilla.models.vanilla_transformer_align import (
        VanillaTransformerAlignConfig,
        VanillaTransformerAlignModel,
    )

    d = Dictionary()
    for w in "a b c d e f g h".split():
        d.add_symbol(w)
    flags = dict(
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        encoder_layers=2,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        share_all_embeddings=True,
    )
    args = Namespace(**{**flags, **extra})
    apply_preset(args, {"alignment_layer": -2} if arch.endswith("align") else {}, VanillaTransformerAlignConfig)
    task = Namespace(source_dictionary=d, target_dictionary=d)
    cls = VanillaTransformerAlignModel if arch.endswith("align") else VanillaTransformerModel
    torch.manual_seed(0)
    return cls.build_model(args, task).eval(), d


def _batch(d):
    src = torch.tensor([[d.pad(), 4, 5, 6, d.eos()], [4, 5, 6, 7, d.eos()]])  # left-padded source
    prev = torch.tensor([[d.eos(), 8, 9, d.pad()], [d.eos(), 9, 10, 11]])  # right-padded target
    return src, torch.tensor([4, 5]), prev


def test_decoder_returns_per_head_weights_and_keeps_fast_path():
    model, d = _tiny_decoder_model()
    src, lengths, prev = _batch(d)
    with torch.no_grad():
        fast_logits, fast_extra = model(src, lengths, prev)
        enc = model.encoder(src, lengths, return_all_attention=True)
        logits, extra = model.decoder(prev, enc, return_all_attention=True)
    assert fast_extra["attn"] == [None]  # nothing asked: no weights computed
    torch.testing.assert_close(logits, fast_logits, rtol=1e-5, atol=1e-5)  # same numbers by the plain formula
    assert len(enc["encoder_attention"]) == 2 and len(extra["cross_attention"]) == 2
    for w in enc["encoder_attention"]:
        assert w.shape == (2, 4, 5, 5)
        assert w[0, :, :, 0].abs().max() == 0  # the pad column of the left-padded sentence gets no weight
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 5))
    for w in extra["self_attention"]:
        assert w.shape == (2, 4, 4, 4)
        assert torch.triu(w, diagonal=1).abs().max() == 0  # causal: nothing from the future
    cross = extra["cross_attention"][-1]
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 4, 4))
    # the default alignment: the last layer's cross-attention averaged over all heads
    model.decoder.make_generation_fast_(need_attn=True)
    with torch.no_grad():
        _, extra2 = model(src, lengths, prev)
    torch.testing.assert_close(extra2["attn"][0], cross.mean(dim=1))


def test_align_model_supervises_first_heads_of_penultimate_layer():
    model, d = _tiny_decoder_model("vanilla_transformer_align", alignment_heads=2)
    src, lengths, prev = _batch(d)
    model.train()  # the criterion sees the alignment during training too (every dropout is 0: deterministic)
    with torch.no_grad():
        _, extra = model(src, lengths, prev)
        enc = model.encoder(src, lengths)
        _, every = model.decoder(prev, enc, return_all_attention=True)
    assert model.decoder.alignment_layer == 0  # -2 of a 2-layer decoder
    torch.testing.assert_close(extra["attn"][0], every["cross_attention"][0][:, :2].mean(dim=1))


def test_full_context_alignment_sees_later_target_words():
    model, d = _tiny_decoder_model("vanilla_transformer_align", full_context_alignment=True)
    src, lengths, prev = _batch(d)
    changed = prev.clone()
    changed[1, 3] = 5  # change only the last target word of sentence 2
    with torch.no_grad():
        logits_a, a = model(src, lengths, prev)
        logits_b, b = model(src, lengths, changed)
    # translation stays causal: earlier positions' predictions are unchanged …
    torch.testing.assert_close(logits_a[1, :3], logits_b[1, :3])
    # … but the full-context alignment of an earlier position depends on the later word
    assert not torch.allclose(a["attn"][0][1, 0], b["attn"][0][1, 0])
    with pytest.raises(ValueError, match="cannot run step by step"):
        model.decoder(prev, model.encoder(src, lengths), incremental_state={}, full_context_alignment=True)


def test_decoder_layer_causal_flag():
    layer = DecoderLayer(SideSizes(N=1, d_model=8, d_ff=16, h=2, P_drop=0.0)).eval()
    x, mem = torch.randn(1, 3, 8), torch.randn(1, 2, 8)
    _, w, _ = layer(x, mem, need_self_weights=True)
    assert w[0, :, 0, 1:].abs().max() == 0
    _, w, _ = layer(x, mem, need_self_weights=True, causal=False)
    assert w[0, :, 0, 1:].abs().min() > 0


def test_align_model_rejects_impossible_flags():
    with pytest.raises(ValueError, match="--alignment-heads must be between 1 and the decoder's 4 heads"):
        _tiny_decoder_model("vanilla_transformer_align", alignment_heads=5)
    with pytest.raises(ValueError, match="--alignment-layer 2 does not exist in a 2-layer decoder"):
        _tiny_decoder_model("vanilla_transformer_align", alignment_layer=2)


def fake_prepared(tiny_corpus, dest):
    """A prepare script's --out layout from the tiny word-level corpus: bpe/ (the text), bin/ (+ pipeline.txt)."""
    import shutil

    (dest / "bin").mkdir(parents=True)
    shutil.copytree(tiny_corpus.parent / "raw", dest / "bpe")
    for f in tiny_corpus.iterdir():
        shutil.copy(f, dest / "bin" / f.name)
    (dest / "bin" / "pipeline.txt").write_text("segmentation=bpe\nlower=0\nops=0\nsrc=en\ntgt=de\n")
    (dest / "bin" / "splits.tsv").write_text("train\ttrain\nvalid\tval\ntest\ttest\n")
    return dest


ALIGN_FLAGS = (
    "--encoder-layers",
    "2",
    "--decoder-layers",
    "2",
    "--encoder-embed-dim",
    "64",
    "--encoder-ffn-embed-dim",
    "128",
    "--encoder-attention-heads",
    "4",
    "--max-update",
    "60",
    "--log-interval",
    "20",
    "--num-workers",
    "0",
    "--no-epoch-checkpoints",
    "--warmup-updates",
    "10",
    "--lr",
    "0.003",
    "--alignment-lambda",
    "0.5",
)


def test_eflomal_alignments_train_the_alignment_model_and_score_agreement(tiny_corpus, tmp_path):
    from conftest import run_script
    from fairseq_vanilla.evaluation.alignment import parse_links

    data = fake_prepared(tiny_corpus, tmp_path / "prep")
    proc = run_script("prepare-alignments.sh", "--data", data)
    assert "ready:" in proc.stdout
    for split in ("train", "valid", "test"):
        links = (data / "align" / f"{split}.align").read_text().splitlines()
        src = (data / "bpe" / f"{split}.en").read_text().splitlines()
        tgt = (data / "bpe" / f"{split}.de").read_text().splitlines()
        assert len(links) == len(src) == len(tgt)  # one line per pair, 61 valid/test pairs (not a multiple of 8)
        for line, s, t in zip(links, src, tgt):
            for i, j in parse_links(line):
                assert i < len(s.split()) and j < len(t.split())
    # the first words "The"/"Die" etc. are aligned by eflomal often enough: sanity of direction (source-target)
    assert sum((0, 0) in parse_links(line) for line in (data / "align" / "train.align").read_text().splitlines()) > 600
    assert (data / "bin-align" / "train.align.en-de.idx").exists()
    assert "done already" in run_script("prepare-alignments.sh", "--data", data).stdout  # skips finished stages

    save = tmp_path / "ckpt"
    train = run_script(
        "train.sh",
        "--preset",
        "demo",
        "--arch",
        "vanilla_transformer_align",
        "--data",
        data / "bin-align",
        "--save",
        save,
        "--",
        *ALIGN_FLAGS,
    )
    log = train.stdout + train.stderr
    align_losses = [float(x) for x in re.findall(r"train_inner.*?alignment_loss=([0-9.]+)", log)]
    assert len(align_losses) == 3 and align_losses[-1] < align_losses[0]  # the supervised head learns the links
    assert "--load-alignments" in (save / "command.sh").read_text()
    gen = fairseq(
        "fairseq-generate",
        data / "bin-align",
        "--user-dir",
        USER_DIR,
        "--path",
        save / "checkpoint_last.pt",
        "--gen-subset",
        "test",
        "--score-reference",
        "--print-alignment",
    )
    (tmp_path / "gen.out").write_text(gen.stdout)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairseq_vanilla",
            "align-agreement",
            str(tmp_path / "gen.out"),
            str(data / "align" / "test.align"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    scores = dict(item.split("=") for item in out.stdout.split())
    assert scores["sentences"] == "61"
    # after 60 updates the supervised head agrees with eflomal far above chance (about 1 link in 10 per target word;
    # measured: precision 0.75, AER 0.22)
    assert float(scores["precision"]) > 0.5 and float(scores["aer"]) < 0.5
    # every decoder layer: the supervised head's layer (the penultimate, first head) scores what align-agreement
    # gave for fairseq-generate's default alignment, and all heads averaged are measured beside it
    by_layer = run_script(
        "alignment-by-layer.py",
        "--path",
        save / "checkpoint_last.pt",
        "--data",
        data,
        "--split",
        "test",
        "--work",
        tmp_path / "by-layer",
        "--json",
        tmp_path / "by-layer.json",
    )
    table = json.loads((tmp_path / "by-layer.json").read_text())["aer_by_layer"]
    assert list(table) == ["first 1 head(s)", "first 4 head(s)"]  # the supervised head, then all 4 heads averaged
    supervised, averaged = table["first 1 head(s)"], table["first 4 head(s)"]
    assert len(supervised) == len(averaged) >= 2 and [r["layer"] for r in averaged] == list(range(len(averaged)))
    assert supervised[-2]["aer"] == pytest.approx(float(scores["aer"]), abs=1e-3)
    printed = [line for line in by_layer.stdout.splitlines() if line.startswith("| first")]
    assert [line.split(" | ")[0] for line in printed] == ["| first 1 head(s)", "| first 4 head(s)"]
    # the plain model cannot be trained with the alignment criterion: a clear message, not a crash
    plain = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "train.sh"),
            "--preset",
            "demo",
            "--arch",
            "vanilla_transformer_align",
            "--data",
            str(tiny_corpus),
            "--save",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert plain.returncode != 0 and "no train.align" in plain.stderr


def test_replace_unk_copies_the_aligned_source_word(tiny_corpus, tiny_checkpoint, tmp_path):
    """--replace-unk (bare, and with a dictionary) on a raw-text split whose reference has unknown words."""
    import shutil

    for f in tiny_corpus.glob("dict.*.txt"):
        shutil.copy(f, tmp_path / f.name)
    src = "Tomorrow the small doctor has visited the zorblax near the lazy cooks."
    ref = "Morgen hat die kleine Ärztin die quxl bei den faulen Köchinnen besucht."
    (tmp_path / "test.en-de.en").write_text(src + "\n")
    (tmp_path / "test.en-de.de").write_text(ref + "\n")
    (tmp_path / "align.dict").write_text("zorblax Zorblax\n")
    for extra, expected in ((("--replace-unk",), "zorblax"), (("--replace-unk", tmp_path / "align.dict"), "Zorblax")):
        out = fairseq(
            "fairseq-generate",
            tmp_path,
            "--dataset-impl",
            "raw",
            "-s",
            "en",
            "-t",
            "de",
            "--user-dir",
            USER_DIR,
            "--path",
            tiny_checkpoint,
            "--gen-subset",
            "test",
            "--score-reference",
            "--print-alignment",
            *extra,
        ).stdout
        hyp = re.search(r"^H-0\t[^\t]*\t(.*)$", out, re.M).group(1).split()
        links = re.search(r"^A-0\t(.*)$", out, re.M).group(1).split()
        align = dict((int(t), int(s)) for s, t in (x.split("-") for x in links))  # target position → source position
        dictionary = (tmp_path / "dict.de.txt").read_text().split()
        assert "quxl" not in dictionary
        for i, word in enumerate(ref.split()):
            if word in dictionary:
                assert hyp[i] == word
            else:  # <unk> in the reference: replaced by the source word its alignment points at (or its entry)
                copied = src.split()[align[i]]
                assert hyp[i] == (expected if copied == "zorblax" else copied)
    # without --print-alignment there is no alignment to use: one clear error
    bad = fairseq(
        "fairseq-generate",
        tmp_path,
        "--dataset-impl",
        "raw",
        "-s",
        "en",
        "-t",
        "de",
        "--user-dir",
        USER_DIR,
        "--path",
        tiny_checkpoint,
        "--gen-subset",
        "test",
        "--score-reference",
        "--replace-unk",
        check=False,
    )
    assert bad.returncode != 0 and "--replace-unk needs the alignment of each hypothesis" in bad.stderr


def test_replace_unk_reads_hard_pairs_and_soft_rows():
    from fairseq_vanilla.fairseq_fixes.replace_unk import replace_unk

    # hard: (source, target) pairs; target 1 (<unk>) ↔ source 2
    assert replace_unk("a <unk> c", "x y zorb", [(0, 0), (2, 1), (1, 2)], {}, "<unk>") == "a zorb c"
    # soft: one probability row per target position; row 1 peaks at source 0, mapped through the dictionary
    soft = [["0.9", "0.1", "0.0"], ["0.7", "0.2", "0.1"]]
    assert replace_unk("a <unk>", "zorb y z", soft, {"zorb": "Zorb"}, "<unk>") == "a Zorb"
    with pytest.raises(ValueError, match="add --print-alignment"):
        replace_unk("a <unk>", "x", [], {}, "<unk>")
