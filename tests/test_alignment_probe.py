"""The alignment probe: hard links as --print-alignment makes them, AER, the gradient alignment, the script's errors."""

import subprocess
import sys

import pytest
import torch
from fairseq import utils

from fairseq_vanilla.evaluation.alignment_scores import aer, batch_hard_links, hard_links, same_source_fraction
from fairseq_vanilla.explain.alignment_probe import probe_batch
from tests.conftest import ROOT
from tests.test_model import make_model

PAD, EOS = 1, 2  # fairseq's Dictionary: <s>=0, <pad>=1, </s>=2, <unk>=3, then the words


def test_hard_links_skip_padding_and_eos_and_number_past_left_padding():
    # source: <pad> w0 w1 </s> (left-padded), target: w2 w3 </s>; rows = target positions, columns = source
    scores = torch.tensor(
        [
            [0.90, 0.05, 0.03, 0.02],  # the padding column is the largest: excluded → w0, source index 0
            [0.10, 0.20, 0.30, 0.40],  # the </s> column is the largest: excluded → w1, source index 1
            [0.00, 0.00, 1.00, 0.00],  # the </s> row: no link
        ]
    )
    src, tgt = torch.tensor([PAD, 4, 5, EOS]), torch.tensor([6, 7, EOS])
    assert batch_hard_links(scores[None], src[None], tgt[None], PAD, EOS) == [{(0, 0), (1, 1)}]
    expected = {(i, j) for i, j in utils.extract_hard_alignment(scores.clone(), src, tgt, PAD, EOS)}
    assert expected == {(0, 0), (1, 1)}


def test_hard_links_equal_fairseq_extract_hard_alignment():
    torch.manual_seed(0)
    for _ in range(20):
        n_pad_src, n_pad_tgt = torch.randint(0, 3, (2,)).tolist()
        src = torch.tensor([PAD] * n_pad_src + torch.randint(4, 20, (5,)).tolist() + [EOS])  # left-padded
        tgt = torch.tensor(torch.randint(4, 20, (4,)).tolist() + [EOS] + [PAD] * n_pad_tgt)  # right-padded
        scores = torch.rand(len(tgt), len(src))
        ours = hard_links(scores, src.ne(PAD) & src.ne(EOS), tgt.ne(PAD) & tgt.ne(EOS))
        assert ours == set(utils.extract_hard_alignment(scores.clone(), src, tgt, PAD, EOS))


def test_aer_worked_by_hand():
    sure = [{(0, 0), (1, 1), (2, 2)}, {(0, 0), (1, 1)}]  # |S| = 5
    predicted = [{(0, 0), (2, 1), (2, 2)}, {(0, 0), (0, 1)}]  # |A| = 5
    # |A∩S| = 2 + 1 = 3; AER = 1 − 2·3/(5 + 5) = 0.4
    assert aer(predicted, sure) == pytest.approx(0.4)
    # target tokens linked in both: 0,1,2 then 0,1; same source for 0 and 2, then 0 → 3 of 5
    assert same_source_fraction(predicted, sure) == pytest.approx(0.6)


def tiny_batch():
    """Two sentences: sources left-padded and ending in </s>; targets right-padded; prev = </s> + target[:-1]."""
    src = torch.tensor([[PAD, 5, 6, 7, EOS], [8, 9, 10, 11, EOS]])  # (B, S)
    target = torch.tensor([[12, 13, EOS, PAD], [14, 15, 16, EOS]])  # (B, T)
    prev = torch.tensor([[EOS, 12, 13, PAD], [EOS, 14, 15, 16]])  # (B, T)
    net = {"src_tokens": src, "src_lengths": src.ne(PAD).sum(-1), "prev_output_tokens": prev}
    return {"net_input": net, "target": target}


def take(sample, b):
    """Sentence b of a batch as a batch of one (its padding removed)."""
    src, tgt = sample["net_input"]["src_tokens"][b], sample["target"][b]
    prev = sample["net_input"]["prev_output_tokens"][b]
    src, keep = src[src.ne(PAD)][None], tgt.ne(PAD)  # (1, S_b)
    net = {"src_tokens": src, "src_lengths": src.ne(PAD).sum(-1), "prev_output_tokens": prev[keep][None]}
    return {"net_input": net, "target": tgt[keep][None]}


def test_gradient_alignment_one_link_per_target_token_and_sentences_independent():
    model = make_model(decoder_layers=2)
    sample = tiny_batch()
    by_head, by_mean, gradient = probe_batch(model, sample, PAD, EOS)
    assert len(by_head) == 2 and all(len(layer) == 4 for layer in by_head)  # N layers × h heads
    n_src, n_tgt = [3, 4], [2, 3]  # word pieces (no padding, no </s>)
    assert set(gradient) == {"gradient_x_input", "gradient_norm"}
    for links, s, t in [z for found in gradient.values() for z in zip(found, n_src, n_tgt)]:
        assert sorted(j for _, j in links) == list(range(t))  # one link per target token
        assert all(0 <= i < s for i, _ in links)
    for sets in [*by_mean, *(head for layer in by_head for head in layer)]:
        assert [len(links) for links in sets] == n_tgt
    # a sentence's gradient links do not depend on the other sentence of its batch
    for b in range(2):
        _, _, alone = probe_batch(model, take(sample, b), PAD, EOS)
        assert alone == {name: [found[b]] for name, found in gradient.items()}


def test_script_names_a_missing_checkpoint(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "alignment-by-head.py"), "--path", str(tmp_path / "no.pt")]
        + ["--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr == f"error: --path: {tmp_path / 'no.pt'}: no such file\n"


@pytest.mark.parametrize("target", ["checkpoint", "notes"])
def test_script_refuses_a_json_it_did_not_write(tmp_path, target):
    """--json at the checkpoint it reads, or at a file that is not its own output: one line, the file untouched."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "align").mkdir()
    (tmp_path / "align" / "valid.align").write_text("0-0\n")
    ckpt, notes = tmp_path / "model.pt", tmp_path / "notes.json"
    ckpt.write_bytes(b"not a real checkpoint")
    notes.write_text('{"mine": 1}\n')
    out = ckpt if target == "checkpoint" else notes
    before = out.read_bytes()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "alignment-by-head.py"), "--path", str(ckpt)]
        + ["--data", str(tmp_path), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    expected = {
        "checkpoint": f"error: --json: {out}: is a file this command reads; choose another --json\n",
        "notes": f"error: --json: {out}: exists and is not this command's output; choose a new --json or give "
        "--force\n",
    }[target]
    assert proc.returncode != 0 and proc.stderr == expected
    assert out.read_bytes() == before
