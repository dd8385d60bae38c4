"""run-demo.sh's output folder works with every tool of the README: load_translator, the fairseq-interactive command
the demo prints at its end, report.py and plot-attention.py (a tiny demo: 400 pairs, 30 updates)."""

import os
import re
import subprocess

import pytest

from conftest import BIN, ROOT, run_script


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    proc = run_script("run-demo.sh", "--out", out, "--train-pairs", "400", "--test-pairs", "20", "--max-update", "30")
    return out, proc.stdout


def test_demo_prints_a_working_command_for_the_users_own_sentence(demo):
    out, stdout = demo
    command = next(line for line in stdout.splitlines() if "| fairseq-interactive " in line)
    assert str(out / "vanilla" / "checkpoints" / "checkpoint_best.pt") in command
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.fullmatch(r"D-0\t-?[\d.]+\t\S.*\n", proc.stdout), proc.stdout  # one detokenised translation


def test_load_translator_reads_the_demo_folder(demo):
    from fairseq_vanilla.inference.hub import load_translator

    out, _ = demo
    (out / "bin" / "pipeline.txt").read_text().index("segmentation=bpe")
    mt = load_translator(str(out / "vanilla" / "checkpoints" / "checkpoint_best.pt"), str(out))
    assert mt.translate("The young horse sees the king .", beam=2).strip()


def test_report_and_attention_maps_of_the_demo(demo, tmp_path):
    out, _ = demo
    report = run_script(
        "report.py", "--save", out / "vanilla", "--generate", out / "vanilla" / "test", "--out", tmp_path / "report"
    )
    text = (tmp_path / "report" / "report.md").read_text()
    assert report.stdout.strip().endswith("report.md") and "fairseq-train" in text and "## BLEU" in text
    run_script(
        "plot-attention.py",
        "--path",
        out / "vanilla" / "checkpoints" / "checkpoint_best.pt",
        "--data",
        out,
        "--sentence",
        "The young horse sees the king .",
        "--out",
        tmp_path / "attention",
    )
    assert list((tmp_path / "attention").glob("*.png"))


def test_a_missing_pipeline_file_names_the_scripts_that_write_it(tmp_path):
    from fairseq_vanilla.inference.hub import load_translator

    (tmp_path / "ckpt.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"bin/pipeline.txt: missing; .*run-demo\.sh"):
        load_translator(str(tmp_path / "ckpt.pt"), str(tmp_path))
