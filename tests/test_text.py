"""The text utilities the scripts rely on (``python -m fairseq_vanilla COMMAND``), on hand-made inputs."""

import subprocess
import sys

import pytest

from fairseq_vanilla.__main__ import main
from fairseq_vanilla.evaluation.translation import compound_split, extract_hypotheses
from fairseq_vanilla.text.cleaning import clean
from fairseq_vanilla.text.io import (
    PipelineError,
    check_json_output,
    check_png_output,
    png_metadata,
    png_text,
    read_lines,
)


def test_compound_split_as_tensor2tensor(tmp_path):
    inp = tmp_path / "in"
    inp.write_text("ein Haus-Boot und ein Fernseh @-@ Turm .\n-a- x-y\n", encoding="utf-8")
    compound_split(str(inp), str(tmp_path / "out"))
    assert read_lines(str(tmp_path / "out")) == [
        "ein Haus ##AT##-##AT## Boot und ein Fernseh ##AT##-##AT## Turm .",
        "-a- x ##AT##-##AT## y",
    ]


def test_extract_hypotheses_orders_by_id_and_refuses_missing(tmp_path):
    gen = tmp_path / "gen.out"
    gen.write_text("S-1\tb\nH-1\t-0.5\tzwei\nH-0\t-0.1\teins\nD-0\t-0.1\teins\nH-0\t-0.9\tnbest2\n")
    extract_hypotheses(str(gen), str(tmp_path / "hyp"), expect=2)
    assert read_lines(str(tmp_path / "hyp")) == ["eins", "zwei"]
    with pytest.raises(PipelineError, match=r"2 hypotheses for 3 source sentences \(missing ids \[2\]\)"):
        extract_hypotheses(str(gen), str(tmp_path / "hyp3"), expect=3)
    assert not (tmp_path / "hyp3").exists()


def test_clean_corpus_n_rules(tmp_path):
    src, tgt = tmp_path / "s", tmp_path / "t"
    src.write_text("a b c\n\na b c d e f g\nx\none two\n")
    tgt.write_text("a b c\nx\na b\ny\n" + " ".join(["w"] * 300) + "\n")
    kept = clean(str(src), str(tgt), str(tmp_path / "s2"), str(tmp_path / "t2"), min_len=1, max_len=250, ratio=1.5)
    # kept: (a b c, a b c) and (x, y); dropped: empty source, ratio 7:2, a 300-token target
    assert kept == 2 and read_lines(str(tmp_path / "s2")) == ["a b c", "x"]


def test_read_lines_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\nalso ok\n\xff\xfe\n")
    with pytest.raises(PipelineError, match=r"bad.txt:3: not valid UTF-8 \(byte 0xff at column 1\)"):
        read_lines(str(bad))
    with pytest.raises(PipelineError, match="no such file"):
        read_lines(str(tmp_path / "nope"))


def test_command_line_prints_results_and_reports_bad_input_as_one_error_line(tmp_path, capsys):
    three = tmp_path / "three.txt"
    three.write_text("a\nb\nc\n")
    assert main(["count", str(three)]) == 0 and capsys.readouterr().out == "3\n"
    assert main(["compound-split", str(three), str(tmp_path / "out")]) == 0 and capsys.readouterr().out == ""
    assert main(["count", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such file\n"
    with pytest.raises(SystemExit) as usage:
        main(["count"])
    assert usage.value.code == 2


def test_text_command_line_imports_neither_torch_nor_fairseq(tmp_path):
    """The scripts call the text commands ≈ 20 times per corpus: none may pay for torch and fairseq (≈ 5 s a call)."""
    three = tmp_path / "three.txt"
    three.write_text("a\nb\nc\n")
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fairseq_vanilla", "count", str(three)],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time")}
    assert run.stdout == "3\n" and "fairseq_vanilla.text.io" in imported
    assert sorted(m for m in imported if m.split(".")[0] in ("torch", "fairseq")) == []


def test_a_json_output_is_rewritten_only_when_it_is_the_commands_own(tmp_path):
    out, model = tmp_path / "out.json", tmp_path / "model.pt"
    model.write_bytes(b"weights")
    check_json_output(str(out), ("aer",))  # absent: may be written
    out.write_text('{"aer": 0.3, "split": "valid"}')
    check_json_output(str(out), ("aer",))  # its own earlier output: may be rewritten
    for text in ('{"other": 1}', "[1, 2]", "not json"):
        out.write_text(text)
        with pytest.raises(PipelineError, match="exists and is not this command's output"):
            check_json_output(str(out), ("aer",))
    with pytest.raises(PipelineError, match="is an input of this command"):
        check_json_output(str(model), ("aer",), reads=(str(model),))
    table, fresh = tmp_path / "out.md", tmp_path / "fresh.json"
    table.write_text("a table of someone else's\n")
    with pytest.raises(PipelineError, match=f"--out {table}: exists and is not this command's output"):
        check_json_output(str(fresh), ("aer",), companions=(str(table),))  # no JSON of its own beside the table
    out.write_text('{"aer": 0.3}')
    check_json_output(str(out), ("aer",), companions=(str(table),))  # beside its own JSON: its own table


def test_a_plot_is_rewritten_only_when_it_carries_the_commands_mark(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ours, theirs, text = tmp_path / "ours.png", tmp_path / "theirs.png", tmp_path / "notes.png"
    fig.savefig(ours, metadata=png_metadata("bench/engines.py"))
    fig.savefig(theirs)  # matplotlib's own "Software" entry
    text.write_text("not a picture")
    plt.close(fig)
    assert png_text(str(ours))["Software"] == "fairseq-vanilla bench/engines.py" and png_text(str(text)) == {}
    check_png_output(str(tmp_path / "absent.png"), "bench/engines.py")
    check_png_output(str(ours), "bench/engines.py")
    for path, tool in ((ours, "bench/throughput.py"), (theirs, "bench/engines.py"), (text, "bench/engines.py")):
        with pytest.raises(PipelineError, match=f"^--plot {path}: exists and is not this command's output"):
            check_png_output(str(path), tool)
