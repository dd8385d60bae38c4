"""Everyday use on a tiny model trained through the pipeline: fairseq-interactive on raw text, the Python hub,
hydra configs equal to the shell recipes, TensorBoard logs, the run report, attention pictures."""

import re
import struct
import subprocess
import sys

import pytest
import torch

from conftest import BIN, ROOT, USER_DIR, fairseq, run_script

RAW_TEST = "test_2016_flickr.en"


def interactive(data, ckpt, lines, *flags):
    """fairseq-interactive on raw lines → ({id: S- line}, {id: D- line}), with the venv's binary."""
    proc = subprocess.run(
        [
            str(BIN / "fairseq-interactive"),
            str(data),
            "--user-dir",
            USER_DIR,
            "--path",
            str(ckpt),
            "-s",
            "en",
            "-t",
            "de",
            "--beam",
            "5",
            "--buffer-size",
            "5",
            "--batch-size",
            "5",
            *map(str, flags),
        ],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    src = {int(m.group(1)): m.group(2) for m in re.finditer(r"^S-(\d+)\t(.*)$", proc.stdout, re.M)}
    det = {int(m.group(1)): m.group(2) for m in re.finditer(r"^D-(\d+)\t[^\t]*\t(.*)$", proc.stdout, re.M)}
    return src, det


def bpe_flags(base):
    return (
        "--tokenizer",
        "vanilla_moses",
        "--moses-lower",
        "--bpe",
        "subword_nmt",
        "--bpe-codes",
        base / "prep" / "bpe" / "codes",
    )


def test_interactive_translates_raw_text_like_the_pipeline(prepared_model, generated):
    raw = (prepared_model / "raw" / RAW_TEST).read_text().splitlines()
    assert any(c.isupper() for c in "".join(raw))  # cased input: the tokenizer must lower-case it
    src, det = interactive(
        prepared_model / "prep" / "bin", prepared_model / "ckpt" / "checkpoint_best.pt", raw, *bpe_flags(prepared_model)
    )
    assert sorted(det) == list(range(13))  # every sentence, 13 is not a multiple of the batch size
    # the same segmentation as prepare-multi30k.sh wrote for this split …
    assert [src[i] for i in range(13)] == (prepared_model / "prep" / "bpe" / "test.en").read_text().splitlines()
    # … and the same detokenised translations as fairseq-generate through scripts/generate.sh
    assert [det[i] for i in range(13)] == (generated / "hyp.txt").read_text().splitlines()
    assert not any("@@" in d for d in det.values())


def test_interactive_and_hub_with_sentencepiece(prepared_model, tmp_path):
    run_script(
        "prepare-multi30k.sh", "--from", prepared_model / "raw", "--out", tmp_path / "prep", "--spm", "--bpe-ops", "300"
    )
    run_script(
        "train.sh",
        "--preset",
        "demo",
        "--data",
        tmp_path / "prep" / "bin",
        "--save",
        tmp_path / "ckpt",
        "--",
        "--max-update",
        "30",
        "--num-workers",
        "0",
    )
    raw = (prepared_model / "raw" / RAW_TEST).read_text().splitlines()[:6]
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    src, det = interactive(
        tmp_path / "prep" / "bin",
        ckpt,
        raw,
        "--bpe",
        "sentencepiece",
        "--sentencepiece-model",
        tmp_path / "prep" / "spm" / "spm.model",
    )
    assert [src[i] for i in range(6)] == (tmp_path / "prep" / "spm" / "test.en").read_text().splitlines()[:6]
    from fairseq_vanilla.inference.hub import load_translator

    hub = load_translator(str(ckpt), str(tmp_path / "prep"))
    assert hub.translate(raw, beam=5) == [det[i] for i in range(6)]


def test_hub_translate_equals_interactive(prepared_model, generated):
    from fairseq_vanilla import VanillaTransformerModel
    from fairseq_vanilla.inference.hub import load_translator

    raw = (prepared_model / "raw" / RAW_TEST).read_text().splitlines()
    hyps = (generated / "hyp.txt").read_text().splitlines()
    mt = load_translator(str(prepared_model / "ckpt" / "checkpoint_best.pt"), str(prepared_model / "prep"))
    assert mt.translate(raw[0]) == hyps[0]  # one string in, one string out (beam 5 from the hub's default)
    assert mt.translate(raw, beam=5) == hyps
    greedy = mt.translate(raw[:3], beam=1)
    assert len(greedy) == 3 and all(isinstance(g, str) and g for g in greedy)
    # fairseq's own from_pretrained signature, the tokenizer and BPE given by name with their flags
    direct = VanillaTransformerModel.from_pretrained(
        str(prepared_model / "ckpt"),
        "checkpoint_best.pt",
        str(prepared_model / "prep" / "bin"),
        tokenizer="vanilla_moses",
        moses_lower=True,
        bpe="subword_nmt",
        bpe_codes=str(prepared_model / "prep" / "bpe" / "codes"),
    )
    assert direct.translate(raw[:4], beam=5) == hyps[:4]
    with pytest.raises(ValueError, match="tokenizer='mosess' is not a registered --tokenizer"):
        VanillaTransformerModel.from_pretrained(
            str(prepared_model / "ckpt"), "checkpoint_best.pt", str(prepared_model / "prep" / "bin"), tokenizer="mosess"
        )
    with pytest.raises(FileNotFoundError, match="nope.pt: no such checkpoint"):
        load_translator(str(prepared_model / "ckpt" / "nope.pt"), str(prepared_model / "prep"))


def test_hub_refuses_a_hostile_checkpoint(prepared_model, tmp_path):
    from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError, safe_torch_load
    from fairseq_vanilla.inference.hub import load_translator
    from test_checkpoint_safety import Payload

    marker = tmp_path / "payload-ran"
    state = safe_torch_load(str(prepared_model / "ckpt" / "checkpoint_best.pt"))
    state["extra_state"]["evil"] = Payload(marker)
    torch.save(state, tmp_path / "hostile.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_translator(str(tmp_path / "hostile.pt"), str(prepared_model / "prep"))
    assert not marker.exists()


def train_inner_losses(text):
    return [float(x) for x in re.findall(r"train_inner.*?\bloss=([0-9.]+)", text)]


def test_hydra_config_equals_the_shell_recipe(prepared_model, tmp_path):
    flags = ("--max-update", "6", "--log-interval", "1", "--num-workers", "0", "--no-save")
    shell = run_script(
        "train.sh",
        "--preset",
        "wu2021",
        "--data",
        prepared_model / "prep" / "bin",
        "--save",
        tmp_path / "shell",
        "--",
        *flags,
    )
    hydra = fairseq(
        "fairseq-hydra-train",
        "--config-dir",
        ROOT / "examples" / "hydra",
        "--config-name",
        "multi30k",
        f"common.user_dir={USER_DIR}",
        f"task.data={prepared_model / 'prep' / 'bin'}",
        f"checkpoint.save_dir={tmp_path / 'hydra'}",
        "optimization.max_update=6",
        "common.log_interval=1",
        "dataset.num_workers=0",
        "checkpoint.no_save=true",
        cwd=tmp_path,
    )
    expected = train_inner_losses(shell.stdout + shell.stderr)
    assert len(expected) == 6
    assert train_inner_losses(hydra.stdout + hydra.stderr) == expected


def read_tensorboard_scalars(folder):
    """{tag: {step: value}} from the TFRecord event files in ``folder`` (no tensorboard package needed)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def test_tensorboard_logs_the_training_curves(prepared_model):
    tb = prepared_model / "tb"
    inner = read_tensorboard_scalars(tb / "train_inner")
    valid = read_tensorboard_scalars(tb / "valid")
    log = (prepared_model / "ckpt" / "train.log").read_text()
    logged = {
        int(n): float(loss) for loss, n in re.findall(r"train_inner.*?\bloss=([0-9.]+),.*?num_updates=(\d+)", log)
    }
    assert sorted(logged) == [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]
    assert {step: round(v, 3) for step, v in inner["loss"].items()} == logged
    assert "lr" in inner and "nll_loss" in valid and len(valid["loss"]) >= 1


def test_report_for_a_translation_run(prepared_model, generated, tmp_path):
    proc = run_script("report.py", "--save", prepared_model / "ckpt", "--generate", generated, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert proc.stdout.strip() == str(tmp_path / "report.md")
    command = (prepared_model / "ckpt" / "command.sh").read_text().strip()
    assert command.startswith("fairseq-train ") and "--tensorboard-logdir" in command and command in report
    bleu = (generated / "bleu.txt").read_text().splitlines()[0]
    assert bleu in report
    hyps = (generated / "hyp.tok").read_text().splitlines()
    rows = [line for line in report.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == 5 and rows[0].endswith(f"| {hyps[0]} |")
    last_valid = re.findall(
        r"valid on 'valid' subset \| loss ([0-9.]+)", (prepared_model / "ckpt" / "train.log").read_text()
    )[-1]
    assert f"last valid loss: {float(last_valid):.3f}" in report
    for png in ("loss.png", "lr.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in report
    run_script("report.py", "--save", prepared_model / "ckpt", "--generate", generated, "--out", tmp_path)  # its own
    assert (tmp_path / "report.md").read_text() == report
    notes = tmp_path / "notes"  # a folder of someone else's: refused in one line, nothing in it touched
    notes.mkdir()
    (notes / "loss.png").write_bytes(b"mine")
    cmd = [sys.executable, str(ROOT / "scripts" / "report.py"), "--save", str(prepared_model / "ckpt"), "--out"]
    refused = subprocess.run([*cmd, str(notes), "--generate", str(generated)], capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr == f"error: --out {notes}: exists and was not made by report; use --force\n"
    assert [p.name for p in notes.iterdir()] == ["loss.png"]
    assert (notes / "loss.png").read_bytes() == b"mine" and not (tmp_path / "notes.tmp").exists()
    run_dir = subprocess.run([*cmd, str(prepared_model / "ckpt"), "--generate", str(generated)], capture_output=True)
    assert run_dir.returncode == 2 and b"holds" in run_dir.stderr  # --out the run's own folder: never written


def test_plot_attention_pictures_and_row_sums(prepared_model, tmp_path):
    sentence = (prepared_model / "raw" / RAW_TEST).read_text().splitlines()[0]
    proc = run_script(
        "plot-attention.py",
        "--path",
        prepared_model / "ckpt" / "checkpoint_best.pt",
        "--data",
        prepared_model / "prep",
        "--sentence",
        sentence,
        "--out",
        tmp_path,
    )
    names = ["encoder_self_attention", "decoder_self_attention", "encoder_decoder_attention"]
    assert proc.stdout.split() == [str(tmp_path / f"{n}.png") for n in names]
    maps = torch.load(tmp_path / "attention.pt", weights_only=True)
    src = (prepared_model / "prep" / "bpe" / "test.en").read_text().splitlines()[0].split() + ["</s>"]
    hyp = [
        line.split("\t")[2]
        for line in (prepared_model / "test" / "gen.out").read_text().splitlines()  # BPE removed by generate.sh
        if line.startswith("H-0\t")
    ][0]
    enc, rows, cols = maps["encoder_self_attention"]
    assert rows == cols == src and enc.shape == (4, len(src), len(src))  # 4 heads of the tiny model
    dec, tgt, cols = maps["decoder_self_attention"]
    assert tgt[-1] == "</s>" and " ".join(tgt[:-1]).replace("@@ ", "") == hyp  # the beam-search translation
    assert cols == ["</s>"] + tgt[:-1] and torch.triu(dec, 1).abs().max() == 0
    cross, rows, cols = maps["encoder_decoder_attention"]
    assert rows == tgt and cols == src
    for weights, _, _ in maps.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    for n in names:
        assert (tmp_path / f"{n}.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run(
        [
            str(BIN / "python"),
            str(ROOT / "scripts" / "plot-attention.py"),
            "--path",
            str(prepared_model / "ckpt" / "checkpoint_best.pt"),
            "--data",
            str(prepared_model / "prep"),
            "--review",
            "x",
            "--out",
            str(tmp_path / "bad"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "not a classifier checkpoint" in bad.stderr
    notes = tmp_path / "notes"  # a folder of someone else's: refused before the model runs, nothing touched
    notes.mkdir()
    (notes / "encoder_self_attention.png").write_bytes(b"mine")
    script, checkpoint = ROOT / "scripts" / "plot-attention.py", prepared_model / "ckpt" / "checkpoint_best.pt"
    args = ["--path", checkpoint, "--data", prepared_model / "prep", "--sentence", sentence, "--out", notes]
    refused = subprocess.run([str(BIN / "python"), str(script), *map(str, args)], capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith(f"error: --out {notes}: exists and was not made by ")
    assert (notes / "encoder_self_attention.png").read_bytes() == b"mine" and len(list(notes.iterdir())) == 1
