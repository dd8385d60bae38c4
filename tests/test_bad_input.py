"""Bad input through the real commands: exit status, one line ``error: …`` naming the flag or file, nothing lost.

Each case runs a script or a stock fairseq binary as a user would and checks four things: the exit status, that
stderr ends with one ``error:`` line and holds no traceback, that the line names the flag or file, and that every file
of the folders involved is byte-identical afterwards. The model is ``tiny_checkpoint`` (conftest.py); no case trains.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, ROOT, TINY_TRAIN_FLAGS, USER_DIR
from fairseq_vanilla.fairseq_fixes.architecture_mismatch import dictionary_sizes
from fairseq_vanilla.fairseq_fixes.errors import FlagError
from fairseq_vanilla.inference.lengths import SKIP_FLAG, SourceTooLongError, too_long_sources
from fairseq_vanilla.text.io import PipelineError
from fairseq_vanilla.text.output_dirs import OUTPUT_MARKER, output_dir
from fairseq_vanilla.text.outputs import claim_output, html_generator, html_made_by, output_file
from fairseq_vanilla.text.provenance import begin_stage

HINT = "skip this example with --skip-invalid-size-inputs-valid-test"  # fairseq's own words


def tree(folder: Path) -> dict:
    """{relative path: sha256} of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(*cmd, stdin: bytes = b"", cwd=None) -> subprocess.CompletedProcess:
    """A script (bash for .sh, the venv's python for .py) or a venv binary, output captured."""
    first = str(cmd[0])
    if first.endswith(".sh"):
        argv = ["bash", str(ROOT / "scripts" / first)]
    elif first.endswith(".py"):
        argv = [sys.executable, str(ROOT / "scripts" / first)]
    else:
        argv = [str(BIN / first)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), WORKERS="1")
    proc = subprocess.run([*argv, *map(str, cmd[1:])], input=stdin, capture_output=True, env=env, cwd=cwd, timeout=600)
    proc.stdout, proc.stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    return proc


def error_line(proc: subprocess.CompletedProcess, *named, status=None) -> str:
    """The command failed (with ``status`` if given) and its stderr ends in one ``error:`` line naming ``named``."""
    assert proc.returncode != 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    if status is not None:
        assert proc.returncode == status, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-3000:]
    assert sum(line.startswith("error: ") for line in lines) == 1, lines
    for name in named:
        assert str(name) in lines[-1], (name, lines[-1])
    return lines[-1]


@pytest.fixture
def training_run(tmp_path, tiny_checkpoint) -> Path:
    """A training run's folder: its checkpoint and its log."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(tiny_checkpoint, run_dir / "checkpoint_best.pt")
    (run_dir / "train.log").write_text("epoch 001 | loss 9.1\n")
    return run_dir


@pytest.fixture
def prepared(tmp_path, tiny_corpus) -> Path:
    """A prepared folder around the tiny corpus: bin/ with pipeline.txt, raw/test.de, bpe/codes (no merges)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_corpus, data / "bin")
    (data / "bin" / "pipeline.txt").write_text("segmentation=bpe\nlower=0\nops=0\nsrc=en\ntgt=de\n")
    (data / "raw").mkdir()
    (data / "raw" / "test.de").write_text("ein test\n")
    (data / "bpe").mkdir()
    (data / "bpe" / "codes").write_text("#version: 0.2\nt h\n")
    return data


# -- no command deletes what it did not make --------------------------------------------------------------------


def test_generate_into_the_training_run_is_refused(training_run, prepared):
    before = tree(training_run), tree(prepared)
    ckpt = training_run / "checkpoint_best.pt"
    proc = run("generate.sh", "--data", prepared, "--path", ckpt, "--out", training_run)
    line = error_line(proc, "--out", training_run, "checkpoint_best.pt")
    assert "reads" in line
    assert (tree(training_run), tree(prepared)) == before
    assert not Path(f"{training_run}.tmp").exists()


def test_generate_into_a_folder_it_did_not_make_is_refused(tmp_path, training_run, prepared):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me\n")
    before = tree(other)
    proc = run("generate.sh", "--data", prepared, "--path", training_run / "checkpoint_best.pt", "--out", other)
    error_line(proc, "--out", other, "exists and was not made by generate.sh; use --force", status=2)
    assert tree(other) == before


def test_generate_beam_zero_is_one_line(training_run, prepared, tmp_path):
    before = tree(training_run)
    proc = run("generate.sh", "--data", prepared, "--path", training_run / "checkpoint_best.pt", "--out",
               tmp_path / "gen", "--beam", "0")  # fmt: skip
    error_line(proc, "--beam", "'0'", status=2)
    assert tree(training_run) == before and not (tmp_path / "gen").exists()


def test_generate_that_fails_after_claiming_its_out_leaves_no_temporary_folder(training_run, prepared, tmp_path):
    """A split with a reference but no binarised source: fairseq-generate fails inside OUT.tmp, which goes with it."""
    (prepared / "raw" / "extra.de").write_text("ein test\n")
    proc = run("generate.sh", "--data", prepared, "--path", training_run / "checkpoint_best.pt", "--out",
               tmp_path / "gen", "--split", "extra")  # fmt: skip
    assert proc.returncode != 0
    assert not (tmp_path / "gen.tmp").exists() and not (tmp_path / "gen").exists()


def test_export_into_the_training_run_is_refused(training_run, prepared):
    before = tree(training_run)
    proc = run("export-ctranslate2.py", "--path", training_run / "checkpoint_best.pt", "--data", prepared, "--out",
               training_run)  # fmt: skip
    error_line(proc, "--out", training_run, "checkpoint_best.pt", status=2)
    assert tree(training_run) == before


def test_export_out_that_is_a_file_is_refused(training_run, prepared, tmp_path):
    target = tmp_path / "model.txt"
    target.write_text("not a folder\n")
    proc = run("export-ctranslate2.py", "--path", training_run / "checkpoint_best.pt", "--data", prepared, "--out",
               target)  # fmt: skip
    error_line(proc, "--out", target, "not a folder", status=2)
    assert target.read_text() == "not a folder\n"


def test_output_dir_replaces_only_its_own_output(tmp_path):
    """Library level: a tool rewrites its own folder, and there only what it made; another tool's folder, a
    checkpoint put beside its files or a failed write never."""
    out = tmp_path / "out"
    for text in ("first", "second"):
        with output_dir(str(out), "tool-a") as tmp:
            Path(tmp, "result.txt").write_text(text)
    digest = hashlib.sha256(b"second").hexdigest()
    assert (out / "result.txt").read_text() == "second"
    assert (out / OUTPUT_MARKER).read_text() == f"tool-a\n{digest}  result.txt\n"  # the tool, the files it made
    with pytest.raises(PipelineError, match="exists and was not made by tool-b; use --force"):
        with output_dir(str(out), "tool-b"):
            pass
    with pytest.raises(RuntimeError, match="half way"):
        with output_dir(str(out), "tool-a") as tmp:
            Path(tmp, "result.txt").write_text("partial")
            raise RuntimeError("half way")
    assert (out / "result.txt").read_text() == "second" and not Path(f"{out}.tmp").exists()
    (out / "sub").mkdir()
    (out / "sub" / "checkpoint9.pt").write_bytes(b"weights")
    with output_dir(str(out), "tool-a") as tmp:
        Path(tmp, "other.txt").write_text("third")
    assert sorted(tree(out)) == [OUTPUT_MARKER, "other.txt", "sub/checkpoint9.pt"]  # its result.txt gone
    assert (out / "sub" / "checkpoint9.pt").read_bytes() == b"weights"


def imdb_folder(tmp_path: Path) -> Path:
    """Enough of a prepare-imdb.sh folder for explain.py's checks that come before the model is read."""
    data = tmp_path / "imdb"
    (data / "bin").mkdir(parents=True)
    (data / "bin" / "pipeline.txt").write_text("segmentation=bpe\nlower=0\n")
    return data


def test_explain_html_onto_its_own_checkpoint_is_refused(training_run, tmp_path):
    """The page would replace the checkpoint it was about to read: refused, --force or not."""
    ckpt, data = training_run / "checkpoint_best.pt", imdb_folder(tmp_path)
    before = tree(training_run), tree(data)
    for force in ((), ("--force",)):
        proc = run("explain.py", "--path", ckpt, "--data", data, "--html", ckpt, *force, stdin=b"A fine film.\n")
        line = error_line(proc, "--html", ckpt, "reads", status=2)
        assert line.startswith("error: --html: ") and proc.stdout == ""
    notes = training_run / "notes.html"
    notes.write_text("<html>my notes</html>\n")
    proc = run("explain.py", "--path", ckpt, "--data", data, "--html", notes, stdin=b"A fine film.\n")
    error_line(proc, "--html", notes, "not this command's output", "--force", status=2)
    assert notes.read_text() == "<html>my notes</html>\n"
    assert (tree(training_run), tree(data)) == (before[0] | {"notes.html": tree(training_run)["notes.html"]}, before[1])
    assert not list(training_run.glob("*.tmp"))


def test_explain_a_translation_checkpoint_is_one_line(training_run, tmp_path):
    ckpt, data = training_run / "checkpoint_best.pt", imdb_folder(tmp_path)
    before = tree(training_run)
    proc = run("explain.py", "--path", ckpt, "--data", data, "--html", tmp_path / "page.html", stdin=b"Fine.\n")
    error_line(proc, "--path", ckpt, "'translation'", "imdb_classification", status=2)
    assert tree(training_run) == before and not (tmp_path / "page.html").exists()


def test_average_over_the_last_checkpoint_is_refused(training_run):
    """--out RUN/checkpoint_last.pt would drop the run's optimizer state; an input is never the output; an earlier
    average is replaced; --force replaces a file that is not a checkpoint's average."""
    for n in (1, 2):
        shutil.copy(training_run / "checkpoint_best.pt", training_run / f"checkpoint{n}.pt")
    shutil.copy(training_run / "checkpoint_best.pt", training_run / "checkpoint_last.pt")
    before = tree(training_run)
    proc = run(
        "average-checkpoints.py", "--dir", training_run, "--last", "2", "--out", training_run / "checkpoint_last.pt"
    )
    error_line(proc, "--out", training_run / "checkpoint_last.pt", "a checkpoint", "--force", status=2)
    proc = run("average-checkpoints.py", "--dir", training_run, "--last", "2", "--out", training_run / "checkpoint2.pt",
               "--force")  # fmt: skip
    error_line(proc, "--out", training_run / "checkpoint2.pt", "reads", status=2)
    proc = run("average-checkpoints.py", "--dir", training_run / "none", "--out", training_run / "avg.pt")
    error_line(proc, "--dir", training_run / "none", status=2)
    assert tree(training_run) == before and not list(training_run.glob("*.tmp"))

    avg = training_run / "avg.pt"
    for _ in range(2):  # its own earlier average is replaced
        done = run("average-checkpoints.py", "--dir", training_run, "--last", "2", "--out", avg)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tree(training_run).keys() - before.keys()) == {"avg.pt"}
    assert {k: v for k, v in tree(training_run).items() if k != "avg.pt"} == before


def test_output_file_replaces_only_its_own_and_leaves_no_tmp(tmp_path):
    """Library level: new and own files are written; another's needs force; an input or a folder never; a failed
    write leaves the old file and no temporary one."""
    page, is_own = tmp_path / "page.html", html_made_by("tool-a")
    for text in ("first", "second"):
        with output_file(str(page), is_own=is_own, flag="--html") as tmp:
            Path(tmp).write_text(f"<html><head>{html_generator('tool-a')}</head>{text}</html>")
    assert page.read_text().endswith("second</html>")
    with pytest.raises(RuntimeError, match="half way"):
        with output_file(str(page), is_own=is_own, flag="--html") as tmp:
            Path(tmp).write_text("partial")
            raise RuntimeError("half way")
    assert page.read_text().endswith("second</html>") and not Path(f"{page}.tmp").exists()
    with pytest.raises(PipelineError, match=r"^--html: .*page\.html: exists and is not this command's output; "):
        claim_output(str(page), is_own=html_made_by("tool-b"), flag="--html")
    assert claim_output(str(page), is_own=html_made_by("tool-b"), force=True, flag="--html") == str(page)
    with pytest.raises(PipelineError, match="is a file this command reads"):
        claim_output(str(page), is_own=is_own, force=True, flag="--html", reads=[str(page)])
    with pytest.raises(PipelineError, match="is a folder, not a file"):
        claim_output(str(tmp_path), is_own=is_own, force=True)
    Path(f"{page}.tmp").write_text("someone's")
    with pytest.raises(PipelineError, match=r"page\.html\.tmp: exists \(the temporary file"):
        claim_output(str(page), is_own=is_own)
    assert Path(f"{page}.tmp").read_text() == "someone's"


# -- the table driver: bad selections, table files and result files start nothing ----------------------------------

TABLE3 = ROOT / "examples" / "table3" / "table3.yaml"
COMMITTED = ROOT / "examples" / "table3" / "results" / "multi30k-1200"  # one finished row: base seed 1


@pytest.fixture
def table_inputs(tmp_path) -> Path:
    """A prepared folder the driver accepts (bin/pipeline.txt, bin/splits.tsv) and a copy of committed results."""
    (tmp_path / "prep" / "bin").mkdir(parents=True)
    (tmp_path / "prep" / "bin" / "pipeline.txt").write_text("src=en\ntgt=de\n")
    (tmp_path / "prep" / "bin" / "splits.tsv").write_text("train\t1\n")
    (tmp_path / "prep" / "raw").mkdir()
    (tmp_path / "prep" / "raw" / "valid.de").write_text("ein Hund .\n")  # the reference of the split Table 3 decodes
    shutil.copytree(COMMITTED, tmp_path / "results")
    return tmp_path


def table3(inputs: Path, *flags) -> subprocess.CompletedProcess:
    """scripts/table3.sh at the scale of the copied results (base seed 1 finished: nothing would train)."""
    return run("table3.sh", "--data", inputs / "prep", "--out", inputs / "work", "--results", inputs / "results",
               "--scale", "multi30k-1200", "--seeds", "1", *flags)  # fmt: skip


def test_table_without_the_decoded_reference_is_one_line(table_inputs):
    """A prepared folder without raw/SPLIT.TGT (the reference every row is scored against) stops before anything
    runs, where the table would otherwise have trained and then failed on its results."""
    (table_inputs / "prep" / "raw" / "valid.de").unlink()
    before = tree(table_inputs)
    error_line(table3(table_inputs, "--rows", "base"), table_inputs / "prep" / "raw" / "valid.de", "missing", status=2)
    assert tree(table_inputs) == before and not (table_inputs / "work").exists()


@pytest.mark.parametrize("rows", ["", ",", "  ", " , "])
def test_table_empty_rows_start_nothing(table_inputs, rows):
    before = tree(table_inputs)
    line = error_line(table3(table_inputs, "--rows", rows), "--rows: empty", status=2)
    assert line.startswith("error: --rows: ")
    assert tree(table_inputs) == before and not (table_inputs / "work").exists()


def test_table_out_that_is_a_file_is_one_line(table_inputs):
    (table_inputs / "work").write_text("my notes\n")
    before = tree(table_inputs)
    error_line(table3(table_inputs, "--rows", "base"), "--out", table_inputs / "work", "not a folder", status=2)
    assert tree(table_inputs) == before


@pytest.mark.parametrize(
    "edit,named",
    [
        (lambda t: t[: t.index("rows:")] + "rows: base\n", "rows: a list of rows"),
        (lambda t: t.replace("{id: A-h1, row: A, ", "{id: A-h1, "), "row A-h1: needs 'row:'"),
        (lambda t: t.replace("- {id: A-h1, ", "- {"), "every row needs a unique id (row 2 of rows: got None)"),
        (lambda t: t.replace("d_model: 512, d_ff: 2048, h: 8, d_k", 'd_model: "256x", d_ff: 2048, h: 8, d_k'),
         "base: d_model: a whole number ≥ 1, got '256x'"),
        (lambda t: t.replace("change: {h: 1,", "change: {h: 0.5,"), "row A-h1: h: a whole number ≥ 1, got 0.5"),
    ],
)  # fmt: skip
def test_table_file_of_the_wrong_shape_is_named(table_inputs, edit, named):
    bad = table_inputs / "bad.yaml"
    bad.write_text(edit(TABLE3.read_text()))
    before = tree(table_inputs)
    error_line(table3(table_inputs, "--table", bad, "--rows", "base"), bad, named, status=2)
    assert tree(table_inputs) == before and not (table_inputs / "work").exists()


@pytest.mark.parametrize(
    "edit,named",
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: json.dumps({**json.loads(text), "bleu": 250}), "bleu: 250 is not a number in [0, 100]"),
        (lambda text: json.dumps({**json.loads(text), "ppl": 0.5}), "ppl: 0.5 is not a number in [1, inf]"),
        (lambda text: json.dumps({**json.loads(text), "chrf": "35"}), "chrf: '35' is not a number in [0, 100]"),
        (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "seed"}), "no 'seed'"),
        (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "bleu"}), "needs its figures"),
        (lambda text: "[1, 2]", "a result file is a JSON object"),
    ],
)
def test_a_broken_result_file_is_named_and_kept(table_inputs, edit, named):
    result = table_inputs / "results" / "base-seed1.json"
    result.write_text(edit(result.read_text()))
    before = tree(table_inputs)
    error_line(table3(table_inputs, "--rows", "base"), result, named, status=2)
    assert tree(table_inputs) == before and not (table_inputs / "work").exists()


def test_results_in_their_ranges_load_and_accuracy_is_checked(tmp_path):
    """Library level: the committed result file loads as it is; an accuracy above 1 is named."""
    from fairseq_vanilla.experiments.table.spec import TableError, load_results

    shutil.copytree(COMMITTED, tmp_path / "r")
    assert list(load_results(str(tmp_path / "r"))) == [("base", 1)]
    r = {"id": "trans-2", "row": "trans-2", "seed": 1, "flags": [], "accuracy_valid": 88.4, "accuracy_test": 0.87}
    (tmp_path / "r" / "trans-2-seed1.json").write_text(json.dumps(r))
    with pytest.raises(TableError, match=r"trans-2-seed1\.json: accuracy_valid: 88\.4 is not a number in \[0, 1\]"):
        load_results(str(tmp_path / "r"))


# -- prepared data knows how it was made ------------------------------------------------------------------------


def multi30k_slice(folder: Path, long_words: int = 0) -> Path:
    """A Multi30k-shaped slice (train, val, test_2016_flickr) of the synthetic corpus; one training pair of
    ``long_words`` words if asked."""
    from fairseq_vanilla.text.synthetic import write_corpus

    write_corpus(str(folder / "syn"), (("train", 150), ("valid", 10), ("test", 10)), seed=5)
    raw = folder / "m30k"
    raw.mkdir()
    for old, new in (("train", "train"), ("valid", "val"), ("test", "test_2016_flickr")):
        for lang in ("en", "de"):
            text = (folder / "syn" / f"{old}.{lang}").read_text()
            if old == "train" and long_words:
                text += " ".join(["word"] * long_words) + "\n"
            (raw / f"{new}.{lang}").write_text(text)
    return raw


def test_prepare_stops_when_options_or_inputs_differ(tmp_path):
    raw = multi30k_slice(tmp_path, long_words=1100)
    out = tmp_path / "prep"
    first = run("prepare-multi30k.sh", "--from", raw, "--out", out, "--bpe-ops", "40")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "train.en: 1 line(s) longer than 1023 tokens (lines 151)" in first.stderr  # counted, not silently kept
    made = tree(out)
    again = run("prepare-multi30k.sh", "--from", raw, "--out", out, "--bpe-ops", "40")
    assert again.returncode == 0 and again.stdout.count("done already") == 4 and tree(out) == made

    line = error_line(run("prepare-multi30k.sh", "--from", raw, "--out", out, "--bpe-ops", "60"), "--bpe-ops")
    assert f"{out}/bpe" in line and "40 then, 60 now" in line and "--force" in line and "--out" in line
    line = error_line(run("prepare-multi30k.sh", "--from", raw, "--out", out, "--bpe-ops", "40", "--lower"))
    assert f"{out}/tok" in line and "--lower: 0 then, 1 now" in line
    (raw / "val.de").write_text("changed " + (raw / "val.de").read_text())
    line = error_line(run("prepare-multi30k.sh", "--from", raw, "--out", out, "--bpe-ops", "40"), "val.de changed")
    assert tree(out) == made

    forced = run("prepare-multi30k.sh", "--from", raw, "--out", out, "--bpe-ops", "40", "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert (out / "raw" / "valid.de").read_text().startswith("changed ")


def test_stage_records_library(tmp_path):
    """begin_stage: skip the same record, name what differs, remake with force; a record-less folder is checked
    against pipeline.txt."""
    src = tmp_path / "a.txt"
    src.write_text("one\n")
    stage = tmp_path / "out" / "tok"
    assert begin_stage(str(stage), {"lower": "0"}, [str(src)]) == "run"
    os.replace(f"{stage}.tmp", stage)
    assert begin_stage(str(stage), {"lower": "0"}, [str(src)]) == "skip"
    src.write_text("two\n")
    with pytest.raises(PipelineError, match=r"input a\.txt changed \(4 bytes then, 4 now\)"):
        begin_stage(str(stage), {"lower": "0"}, [str(src)])
    assert begin_stage(str(stage), {"lower": "0"}, [str(src)], force=True) == "run" and not stage.exists()
    legacy = tmp_path / "old" / "bpe"
    legacy.mkdir(parents=True)
    settings = tmp_path / "old" / "pipeline.txt"
    settings.write_text("ops=10000\nlower=0\n")
    assert begin_stage(str(legacy), {"ops": "10000"}, legacy_settings=str(settings)) == "skip"
    with pytest.raises(PipelineError, match="--bpe-ops: 10000 then, 300 now"):
        begin_stage(str(legacy), {"ops": "300"}, legacy_settings=str(settings))


# -- no silent truncation ---------------------------------------------------------------------------------------


def test_too_long_source_is_refused_like_fairseq(tmp_path, training_run, prepared, tiny_corpus):
    long_line = " ".join(["the"] * 1100) + "\n"
    model = tmp_path / "ct2"
    export = run("export-ctranslate2.py", "--path", training_run / "checkpoint_best.pt", "--data", prepared,
                 "--out", model)  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    assert "max_source_positions=1024" in (model / "pipeline.txt").read_text()
    again = run("export-ctranslate2.py", "--path", training_run / "checkpoint_best.pt", "--data", prepared,
                "--out", model)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]  # its own earlier export is replaced
    made = tree(model)

    ours = error_line(run("translate.py", "--model", model, stdin=b"a short one\n" + long_line.encode()), HINT)
    assert "Size of sample #1 is invalid" in ours and "max_positions=(1024, 1024)" in ours
    skipped = run("translate.py", "--model", model, SKIP_FLAG, stdin=b"a short one\n" + long_line.encode())
    assert skipped.returncode == 0 and skipped.stdout.count("\n") == 2 and skipped.stdout.endswith("\n\n")
    error_line(run("translate.py", "--model", model, stdin=b"fine\n\xff\xfe bad\n"), "<stdin>:2", "UTF-8")

    (tmp_path / "long.txt").write_text(long_line)
    theirs = run("fairseq-interactive", tiny_corpus, "--user-dir", USER_DIR, "--path",
                 training_run / "checkpoint_best.pt", "--input", tmp_path / "long.txt")  # fmt: skip
    error_line(theirs, HINT)
    assert tree(model) == made


def test_too_long_sources_library():
    assert too_long_sources([["a"] * 1023, ["a"] * 1024], (1024, 1024), skip=True) == [1]
    with pytest.raises(SourceTooLongError, match=r"Size of sample #1 is invalid \(=\(1025, 0\)\) since max_positions"):
        too_long_sources([["a"] * 3, ["a"] * 1024], (1024, 1024))


# -- one line, no traceback -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags,named",
    [
        (("--encoder-embed-dim", "130"), "--encoder-embed-dim (130) must be divisible by --encoder-attention-heads"),
        (("--attention-key-dim", "0", "--attention-value-dim", "32"), "--attention-key-dim must be positive"),
        (("--label-smoothing", "1.0"), "--label-smoothing must be in [0, 1)"),
        (("--lr-scheduler", "noam", "--warmup-updates", "0", "--lr", "1"), "--warmup-updates must be at least 1"),
    ],
)
def test_impossible_training_flags_are_one_line(tmp_path, tiny_corpus, flags, named):
    save = tmp_path / "save"
    proc = run("fairseq-train", tiny_corpus, "--user-dir", USER_DIR, *TINY_TRAIN_FLAGS, "--max-update", "1",
               "--save-dir", save, *flags)  # fmt: skip
    error_line(proc, named, status=1)
    assert not list(save.glob("*.pt"))


def test_unwritable_save_dir_is_one_line(tmp_path, tiny_corpus):
    blocker = tmp_path / "a_file"
    blocker.write_text("x\n")
    proc = run("fairseq-train", tiny_corpus, "--user-dir", USER_DIR, *TINY_TRAIN_FLAGS, "--max-update", "1",
               "--save-dir", blocker)  # fmt: skip
    error_line(proc, f"--save-dir {blocker}: cannot be written", status=1)
    assert blocker.read_text() == "x\n"


def test_checkpoint_of_another_dictionary_is_named(tmp_path, tiny_corpus, training_run):
    smaller = tmp_path / "bin"
    shutil.copytree(tiny_corpus, smaller)
    for side in ("en", "de"):
        dictionary = smaller / f"dict.{side}.txt"
        dictionary.write_text("".join(dictionary.read_text().splitlines(keepends=True)[:40]))
    before = tree(training_run)
    proc = run("fairseq-train", smaller, "--user-dir", USER_DIR, *TINY_TRAIN_FLAGS, "--max-update", "1",
               "--save-dir", tmp_path / "save", "--restore-file", training_run / "checkpoint_best.pt",
               "--reset-optimizer", "--reset-dataloader", "--reset-meters")  # fmt: skip
    line = error_line(proc, "checkpoint_best.pt", "another dictionary", status=1)
    assert "architecture" not in line
    assert tree(training_run) == before
    cause = (
        "size mismatch for encoder.embed_tokens.embedding.weight: copying a param with shape torch.Size([90, 8]) "
        "from checkpoint, the shape in current model is torch.Size([48, 8])."
    )
    assert dictionary_sizes(cause) == (90, 48)
    assert dictionary_sizes(cause.replace("embed_tokens", "layers.0.ffn")) is None


def test_translation_checkpoint_to_predict_imdb_is_one_line(training_run, prepared):
    proc = run("predict-imdb.py", "--path", training_run / "checkpoint_best.pt", "--data", prepared, stdin=b"x\n")
    error_line(proc, "--path", "'translation'", "imdb_classification", status=1)


def test_fit_memory_too_small_says_gb_and_gib():
    line = error_line(run("fit-memory.py", "--memory", "0.1GB"), "--memory 0.1GB", status=2)
    assert "0.1 GB (0.0931 GiB" in line and "is too small" in line and "holds" not in line


def test_flag_errors_are_value_errors_and_one_line_exits():
    error = FlagError("--label-smoothing must be in [0, 1), got 1.0")
    assert isinstance(error, ValueError) and isinstance(error, SystemExit)
    assert error.code == "error: --label-smoothing must be in [0, 1), got 1.0"


# -- every folder writer: a folder it did not make is refused, in its own only its files are replaced -------------


def report_inputs(tmp_path: Path) -> tuple:
    """A run folder (train.log, command.sh) and a generate.sh folder (bleu.txt, gen.out) for report.py."""
    save, gen = tmp_path / "save", tmp_path / "gen"
    save.mkdir()
    gen.mkdir()
    (save / "train.log").write_text(
        "| INFO | train_inner | epoch 001:  50 / 99 loss=9.1, nll_loss=9, lr=0.0005, num_updates=50\n"
        "| INFO | valid | epoch 001 | valid on 'valid' subset | loss 8.5 | nll_loss 8.4 | num_updates 50\n"
    )
    (save / "command.sh").write_text("fairseq-train data --arch vanilla_transformer_tiny\n")
    (gen / "bleu.txt").write_text("sacreBLEU 1.0\n")
    (gen / "gen.out").write_text("S-0\tein test\nT-0\ta test\nD-0\t-0.5\ta test\n")
    return save, gen


def folder_writer(tool: str, training_run: Path, prepared: Path, tmp_path: Path) -> tuple:
    """(the command without --out, the folder of one of its inputs) of each folder writer in scripts/."""
    ckpt = training_run / "checkpoint_best.pt"
    if tool == "report":
        save, gen = report_inputs(tmp_path)
        return ("report.py", "--save", save, "--generate", gen), save
    if tool == "plot-attention":
        return ("plot-attention.py", "--path", ckpt, "--data", prepared, "--sentence", "a test"), training_run
    return ("export-ctranslate2.py", "--path", ckpt, "--data", prepared), training_run


@pytest.mark.parametrize("tool", ["export-ctranslate2", "plot-attention", "report"])
def test_folder_writer_replaces_only_what_it_made(tool, training_run, prepared, tmp_path):
    cmd, input_folder = folder_writer(tool, training_run, prepared, tmp_path)
    inputs = [training_run, prepared, input_folder]
    before = [tree(folder) for folder in inputs]
    notes = tmp_path / "notes"  # someone else's folder
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me\n")
    (notes / "checkpoint_best.pt").write_bytes(b"weights")
    theirs = tree(notes)
    line = error_line(run(*cmd, "--out", notes), status=2)
    assert line == f"error: --out {notes}: exists and was not made by {tool}; use --force"
    assert tree(notes) == theirs and not Path(f"{notes}.tmp").exists()
    line = error_line(run(*cmd, "--out", input_folder, "--force"), input_folder, "which this command reads", status=2)
    assert line.startswith(f"error: --out {input_folder}: holds ")

    out = tmp_path / "out"
    first = run(*cmd, "--out", out)
    assert first.returncode == 0, first.stderr[-3000:]
    made = tree(out)
    listed = (out / OUTPUT_MARKER).read_text().splitlines()
    assert listed[0] == tool and {row.split("  ", 1)[1] for row in listed[1:]} == made.keys() - {OUTPUT_MARKER}
    (out / "mine.txt").write_text("my notes\n")  # put beside its output by the user: kept by a re-run
    again = run(*cmd, "--out", out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "mine.txt").read_text() == "my notes\n" and tree(out).keys() == made.keys() | {"mine.txt"}
    assert "mine.txt" not in (out / OUTPUT_MARKER).read_text()

    forced = run(*cmd, "--out", notes, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert {k: v for k, v in tree(notes).items() if k in theirs} == theirs  # its own files beside theirs
    assert tree(notes).keys() == theirs.keys() | made.keys()
    assert [tree(folder) for folder in inputs] == before and not list(tmp_path.glob("*.tmp"))


def test_output_dir_refuses_its_own_folder_changed_since(tmp_path):
    """Library level: a file the tool made and someone changed since is not replaced without force; a folder of the
    one-line marker (before files were listed) keeps every file but those the new output writes."""
    out = tmp_path / "out"
    with output_dir(str(out), "tool-a") as tmp:
        Path(tmp, "result.txt").write_text("first")
    (out / "result.txt").write_text("edited")
    with pytest.raises(PipelineError, match=r"out: result\.txt was changed after tool-a wrote it; use --force"):
        with output_dir(str(out), "tool-a") as tmp:
            Path(tmp, "result.txt").write_text("second")
    assert (out / "result.txt").read_text() == "edited" and not Path(f"{out}.tmp").exists()
    with output_dir(str(out), "tool-a", force=True) as tmp:
        Path(tmp, "result.txt").write_text("second")
    assert (out / "result.txt").read_text() == "second"
    old = tmp_path / "old"
    old.mkdir()
    (old / OUTPUT_MARKER).write_text("tool-a\n")
    (old / "result.txt").write_text("old")
    (old / "kept.txt").write_text("kept")
    with output_dir(str(old), "tool-a") as tmp:
        Path(tmp, "result.txt").write_text("new")
    assert (old / "result.txt").read_text() == "new" and (old / "kept.txt").read_text() == "kept"


# -- train.sh --save: never a file, a corpus, others' files or an average; an earlier run is resumed -----------------


def train_dry_run(data: Path, save: Path) -> subprocess.CompletedProcess:
    return run("train.sh", "--preset", "demo", "--data", data, "--save", save, "--dry-run")


def averaged_run(training_run: Path) -> Path:
    """A run whose checkpoint_last.pt is average-checkpoints.py's average of its two epoch checkpoints."""
    for n in (1, 2):
        shutil.copy(training_run / "checkpoint_best.pt", training_run / f"checkpoint{n}.pt")
    last = training_run / "checkpoint_last.pt"
    avg = run("average-checkpoints.py", "--dir", training_run, "--last", "2", "--out", last)
    assert avg.returncode == 0, avg.stderr[-2000:]
    return training_run


@pytest.mark.parametrize("case", ["file", "data folder", "other files", "averaged checkpoint_last.pt"])
def test_train_save_that_is_not_a_run_is_refused(case, tiny_corpus, training_run, tmp_path):
    if case == "file":
        save, named = tmp_path / "model.pt", "exists and is not a folder"
        shutil.copy(training_run / "checkpoint_best.pt", save)
    elif case == "data folder":
        save, named = tmp_path / "bin", "a prepared corpus's file: a data folder, not a run"
        shutil.copytree(tiny_corpus, save)
    elif case == "other files":
        save, named = training_run, "holds notes.txt, which training does not write"
        (save / "notes.txt").write_text("my notes\n")
    else:
        save, named = averaged_run(training_run), "checkpoint_last.pt is an average"
    before = tree(tmp_path)
    line = error_line(train_dry_run(tiny_corpus, save), named, status=2)
    assert line.startswith(f"error: --save {save}: ")
    assert tree(tmp_path) == before


def test_train_save_resumes_an_earlier_run(tiny_corpus, training_run):
    """A run folder: checkpoints (a kill's .tmp too), logs, the command and folders our tools and TensorBoard made."""
    shutil.copy(training_run / "checkpoint_best.pt", training_run / "checkpoint_last.pt")
    (training_run / "checkpoint_last.pt.tmp").write_bytes(b"half")
    (training_run / "command.sh").write_text("fairseq-train …\n")
    with output_dir(str(training_run / "report"), "report") as tmp:
        Path(tmp, "report.md").write_text("# Run report\n")
    (training_run / "tb" / "train").mkdir(parents=True)
    (training_run / "tb" / "train" / "events.out.tfevents.1.host").write_bytes(b"\0")
    before = tree(training_run)
    proc = train_dry_run(tiny_corpus, training_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {k: v for k, v in tree(training_run).items() if k != "command.sh"} == {
        k: v for k, v in before.items() if k != "command.sh"
    }


# -- the table driver: a job made from other data or at another scale is never done; one driver per job ------------


@pytest.fixture
def trained_job(table_inputs) -> Path:
    """table_inputs with binarised data in prep/ (a dictionary of 'haus'), another corpus in other/ ('hund'), a
    results folder fresh/ without base seed 1, and a work folder whose job base/seed1 was trained on prep/ at scale
    multi30k-1200 (its fingerprint and a checkpoint)."""
    from fairseq_vanilla.experiments.table import fingerprint as F
    from fairseq_vanilla.experiments.table import jobs as J
    from fairseq_vanilla.experiments.table import spec as T

    (table_inputs / "other" / "bin").mkdir(parents=True)
    (table_inputs / "other" / "bin" / "pipeline.txt").write_text("src=en\ntgt=de\n")
    (table_inputs / "other" / "bin" / "splits.tsv").write_text("train\t1\n")
    shutil.copytree(table_inputs / "prep" / "raw", table_inputs / "other" / "raw")
    for corpus, word in (("prep", "haus"), ("other", "hund")):
        for lang in ("en", "de"):
            (table_inputs / corpus / "bin" / f"dict.{lang}.txt").write_text(f"{word} 1\n")
    table = T.load_table(str(TABLE3))
    row = next(r for r in table["rows"] if r["id"] == "base")
    work = table_inputs / "work" / "base" / "seed1"
    F.record(str(work), J.identity(table, row, 1, str(table_inputs / "prep"), "multi30k-1200"))
    (work / "checkpoints").mkdir()
    (work / "checkpoints" / "checkpoint_last.pt").write_bytes(b"the weights of 1200 updates")
    (table_inputs / "fresh").mkdir()
    return table_inputs


def nothing_started(inputs: Path, proc: subprocess.CompletedProcess) -> bool:
    """No job launched: no Hydra sweep in the work folder, no lock left."""
    work = inputs / "work"
    launched = "job(s) through hydra" in proc.stdout or (work / "multirun.yaml").exists()
    return not launched and not any(work.rglob("*.lock"))


def test_table_result_of_other_data_is_not_done(table_inputs):
    """The committed base seed 1 was made from runs/multi30k/bin: with another --data it is not reported done."""
    before = tree(table_inputs)
    proc = table3(table_inputs, "--rows", "base")
    result = table_inputs / "results" / "base-seed1.json"
    line = error_line(proc, result, "was made on data ", f"not {table_inputs}/prep/bin", "--results", status=2)
    assert "runs/multi30k/bin" in line and "done already" not in proc.stdout
    assert tree(table_inputs) == before and not (table_inputs / "work").exists()


def test_table_job_of_other_data_in_the_same_out_is_refused(trained_job):
    before = tree(trained_job)
    proc = table3(trained_job, "--data", trained_job / "other", "--results", trained_job / "fresh", "--rows", "base")
    was = f"--out {trained_job / 'work'}: job base/seed1 was trained on data {trained_job}/prep/bin (fingerprint "
    line = error_line(proc, was, f"not {trained_job}/other/bin (fingerprint ", "remove that job folder", status=2)
    assert "at scale" not in line and "flags" not in line  # only the data differs
    assert tree(trained_job) == before and nothing_started(trained_job, proc)


def test_table_job_of_another_scale_in_the_same_out_is_refused(trained_job):
    before = tree(trained_job)
    proc = table3(trained_job, "--scale", "multi30k", "--results", trained_job / "fresh", "--rows", "base")
    error_line(proc, "job base/seed1 was trained at scale multi30k-1200, not multi30k",
               "--max-update 1200 then, 2500 now", status=2)  # fmt: skip
    assert tree(trained_job) == before and nothing_started(trained_job, proc)


def test_table_job_run_by_a_live_driver_is_refused(trained_job):
    """The same data and scale would resume the job, but another driver holds it: refused, naming its pid."""
    from fairseq_vanilla.experiments.table import locks as L

    held = L.lock_jobs([str(trained_job / "work" / "base" / "seed1")])
    try:
        before = tree(trained_job)
        proc = table3(trained_job, "--results", trained_job / "fresh", "--rows", "base")
        error_line(proc, "seed1.lock: its job is being run by another driver", f"(pid {os.getpid()})", status=2)
        assert tree(trained_job) == before and not (trained_job / "work" / "multirun.yaml").exists()
    finally:
        L.release(held)


# -- alignment-by-layer.py --work: outputs reused only for what made them ------------------------------------------


def test_alignment_by_layer_work_of_another_checkpoint_or_with_foreign_files_is_refused(tmp_path):
    """--work's record (made_from.json) names another checkpoint: refused, one line, nothing changed; a --work
    holding a file the command did not write: refused even with --force; --force removes only the outputs."""
    import importlib.util

    ckpt, data = tmp_path / "model.pt", tmp_path / "data"
    ckpt.write_bytes(b"not read before the checks")
    (data / "align").mkdir(parents=True)
    (data / "align" / "valid.align").write_text("0-0\n")
    work = tmp_path / "by-layer"
    work.mkdir()
    (work / "made_from.json").write_text('{"checkpoint_sha256": "0", "reference_sha256": "0", "split": "valid"}')
    (work / "valid.L0.align.out").write_text("H-0\t0.0\tein test\n")
    before = tree(work)
    proc = run("alignment-by-layer.py", "--path", ckpt, "--data", data, "--work", work)
    error_line(proc, "--work", work, "another checkpoint, split or reference; choose another --work or give --force",
               status=2)  # fmt: skip
    assert tree(work) == before
    (work / "notes.txt").write_text("mine\n")
    before = tree(work)
    proc = run("alignment-by-layer.py", "--path", ckpt, "--data", data, "--work", work, "--force")
    error_line(proc, "--work", work, "holds files this command did not write", status=2)
    assert tree(work) == before
    spec = importlib.util.spec_from_file_location("abl", ROOT / "scripts" / "alignment-by-layer.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (work / "notes.txt").unlink()
    from fairseq_vanilla.text.provenance import file_sha256

    made_from = {"checkpoint_sha256": file_sha256(str(ckpt)), "reference_sha256": "1", "split": "valid"}
    script.claim_work(str(work), made_from, force=True)
    assert sorted(p.name for p in work.iterdir()) == []  # the stale outputs and their record are gone
    (work / "made_from.json").write_text(json.dumps(made_from))
    (work / "valid.L0.align.out").write_text("H-0\t0.0\tein test\n")
    script.claim_work(str(work), made_from, force=False)  # the same checkpoint: its outputs are reused
    assert (work / "valid.L0.align.out").exists()
