"""The table-of-variations driver (scripts/table3.sh): table files, rows → flags at a scale, and a whole table of two
rows × two seeds on the tiny prepared corpus, run twice (the second run redoes nothing)."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from fairseq_vanilla.experiments.table import spec as T
from tests.conftest import ROOT, run_script

TABLE3 = str(ROOT / "examples" / "table3" / "table3.yaml")


def test_table3_file_has_every_row_of_the_paper():
    table = T.load_table(TABLE3)
    ids = [r["id"] for r in T.select_rows(table, None)]
    diagnostics = {"C-N8-warmup800", "D-drop0.3", "big-drop0.1"}  # one change each: why N = 8 and big fail
    diagnostics |= {"A-h1-dk16", "A-h8-dk128"}  # h = 1 changes h and d_k: these change one each
    assert diagnostics <= set(ids)
    assert len(set(ids) - diagnostics) == 20  # Table 3: base, A×4, B×2, C×7, D×4, E, big
    assert {r["row"] for r in table["rows"]} >= {"base", "A", "B", "C", "D", "E", "big", "accum", "align"}


def test_rows_scale_sizes_and_steps():
    table = T.load_table(TABLE3)
    rows = {r["id"]: r for r in table["rows"]}
    base = T.row_symbols(table, rows["base"], "multi30k")
    assert (base["N"], base["d_model"], base["d_ff"], base["h"], base["steps"]) == (6, 128, 512, 8, 2500)
    b16 = T.row_symbols(table, rows["B-dk16"], "multi30k")
    assert (b16["d_k"], b16["d_v"]) == (4, 16)  # 16·¼ and 64·¼: d_k shrinks, d_v stays d_model/h
    big = T.row_symbols(table, rows["big"], "multi30k")
    assert (big["d_model"], big["d_ff"], big["h"], big["P_drop"], big["steps"]) == (256, 1024, 16, 0.3, 7500)
    assert T.row_symbols(table, rows["big"], "paper")["steps"] == 300000


def test_flags_build_the_row_model_through_fairseq_parser():
    from tests.test_model import parse_arch

    table = T.load_table(TABLE3)
    row = next(r for r in table["rows"] if r["id"] == "B-dk16")
    flags = T.train_flags(table, row, "multi30k", seed=2)
    args = parse_arch("--criterion", "vanilla_label_smoothed_cross_entropy", *flags)
    assert (args.attention_key_dim, args.attention_value_dim, args.encoder_embed_dim, args.decoder_layers) == (
        4,
        16,
        128,
        6,
    )
    assert args.lr_scheduler == "noam" and args.adam_eps == 1e-9 and args.seed == 2 and args.max_update == 2500


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: t.replace("change: {h: 1,", "change: {heads: 1,"), "row A-h1: unknown symbol"),
        (lambda t: t.replace("- {id: A-h4,", "- {id: A-h1,"), "unique id"),
    ],
)
def test_bad_table_files_are_named(tmp_path, edit, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(Path(TABLE3).read_text()))
    with pytest.raises(T.TableError, match=f"{bad}: .*{message}"):
        T.load_table(str(bad))


def test_unknown_row_and_missing_data_are_named(tmp_path):
    with pytest.raises(T.TableError, match="no row or row group \\['Z'\\]"):
        T.select_rows(T.load_table(TABLE3), ["Z"])
    proc = __import__("subprocess").run(
        ["bash", str(ROOT / "scripts" / "table3.sh"), "--data", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and f"{tmp_path}/bin/pipeline.txt missing" in proc.stderr


@pytest.mark.parametrize("path", ["/data/plain-1.2", "/a b,c=d/it's", "/w/[x]", "/ends/in\\", "/q\\'z"])
def test_paths_reach_hydra_literally(path):
    """The driver hands paths to Hydra's override grammar quoted: commas, spaces, '=', brackets, quotes and
    backslashes come out as written."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from fairseq_vanilla.experiments.table.runner import hydra_value

    [override] = OverridesParser.create().parse_overrides(["data=" + hydra_value(path)])
    assert override.value() == path


def test_job_names_are_work_folders():
    from fairseq_vanilla.experiments.table.jobs import job_name, parse_job

    assert job_name("D-drop0.0", 12) == "D-drop0.0/seed12" and parse_job("D-drop0.0/seed12") == ("D-drop0.0", 12)
    with pytest.raises(T.TableError, match="job='base': expected ROW/seedN"):
        parse_job("base")


def test_valid_curve_reads_every_validation_once(tmp_path):
    from fairseq_vanilla.experiments.table.stages import valid_curve

    line = "2026-11-25 17:29:21 | INFO | valid | epoch {e:03d} | valid on 'valid' subset | loss 8.7 | nll_loss 8.0 | "
    log_file = tmp_path / "train.log"
    log_file.write_text(
        line.format(e=1) + "ppl 257.96 | wps 5244.2 | num_updates 125\n"
        "2026-11-25 17:30:00 | INFO | train_inner | epoch 002:     75 / 125 loss=8.087, ppl=153.24, num_updates=200\n"
        + line.format(e=2)
        + "ppl 96.63 | wps 7289.4 | num_updates 250 | best_loss 7.526\n"
        + line.format(e=2)
        + "ppl 96.5 | wps 7289.4 | num_updates 250 | best_loss 7.52\n"  # a resumed run's repeat
    )
    assert valid_curve(str(log_file)) == [[125, 257.96], [250, 96.5]]


def job_that_trains(tmp_path) -> str:
    """Python code of a job: stages.train on a "training" that writes its pid to child.pid and sleeps for 2 min."""
    training = f"import os, time; open({str(tmp_path / 'child.pid')!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    return (
        "import sys; from fairseq_vanilla.experiments.table.stages import train; "
        f"train({str(tmp_path)!r}, [sys.executable, '-c', {training!r}], 1, 'row')"
    )


def signal_once_training(code: str, tmp_path, signum) -> int:
    """Run ``code`` (python -c), send it ``signum`` once the training has started, return its exit status."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.time() + 60
    while not (tmp_path / "child.pid").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signum)
    return proc.wait(timeout=60)


def training_is_gone(tmp_path, wait: float = 30.0) -> bool:
    """Whether the training of :func:`job_that_trains` has ended (and been reaped) within ``wait`` seconds."""
    import time

    pid, deadline = int((tmp_path / "child.pid").read_text()), time.time() + wait
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.time() >= deadline:
            return False
        time.sleep(0.2)


def test_sigterm_stops_and_reaps_the_training_child(tmp_path):
    """SIGTERM to the job (pkill, a Slurm limit) stops the training child with it, and the next sitting trains on."""
    import signal

    assert signal_once_training(job_that_trains(tmp_path), tmp_path, signal.SIGTERM) == 128 + signal.SIGTERM
    assert not (tmp_path / "train.done").exists()  # the next sitting trains on
    assert training_is_gone(tmp_path, wait=0)  # stopped and reaped before the job exited, not orphaned


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_to_the_driver_reaches_the_training_through_the_launcher(tmp_path, signum):
    """The driver runs the Hydra jobs process, whose launcher may run each job in a worker process of its own
    (joblib), which runs fairseq-train. SIGTERM (or Ctrl-C's SIGINT, a closed terminal's SIGHUP) to the driver reaches
    the whole group: the worker stops and reaps its training, the driver waits and fails; nothing is left running."""
    import signal

    worker = job_that_trains(tmp_path)
    launcher = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {worker!r}])"  # no handler of its own
    driver = (
        "import os, sys; from fairseq_vanilla.experiments.table.stages import run_forwarding_sigterm; "
        f"sys.exit(run_forwarding_sigterm([sys.executable, '-c', {launcher!r}], dict(os.environ)))"
    )
    assert signal_once_training(driver, tmp_path, getattr(signal, signum)) != 0
    assert training_is_gone(tmp_path), "the training outlived the driver"
    assert not (tmp_path / "train.done").exists()


def test_every_sitting_counts_a_killed_one_up_to_its_last_line(tmp_path):
    """Training time is read from the log, sitting by sitting (`$ command` lines): 1 h 2 min 5 s for a whole sitting,
    40 s for one killed outright (SIGKILL: no record of its own, no "done training"), 0 for one that died before
    fairseq logged twice; and a finished stage returns their sum without training again."""
    from fairseq_vanilla.experiments.table.stages import sitting_seconds, train

    log = tmp_path / "train.log"
    log.write_text(
        "$ fairseq-train DATA --seed 1\n"
        "2026-12-01 23:59:00 | INFO | fairseq_cli.train | {'_name': None}\n"
        "epoch 001:  50%|#####     | 1/2 [00:01<00:01]\n"
        "2026-12-02 01:01:05 | INFO | fairseq_cli.train | done training in 3724.9 seconds\n"
        "$ fairseq-train DATA --seed 1\n"
        "2026-12-02 02:00:00 | INFO | fairseq_cli.train | {'_name': None}\n"
        "2026-12-02 02:00:40 | INFO | train_inner | epoch 001:    100 / 125 loss=9.1\n"
        "$ fairseq-train DATA --seed 1\n"
        "2026-12-02 03:00:00 | INFO | fairseq_cli.train | {'_name': None}\n"
        "Traceback (most recent call last):\n",
        encoding="utf-8",
    )
    assert sitting_seconds(str(log)) == [3725.0, 40.0, 0.0]
    (tmp_path / "train.done").write_text("")
    assert train(str(tmp_path), ["false"], 1, "row") == 3765.0
    assert sitting_seconds(str(tmp_path / "absent.log")) == []


TINY_TABLE = """
name: tiny
kind: translation
decode: {split: valid, beam: 4, lenpen: 0.6}
seeds: {base: 2, other: 2}
base: {N: 6, d_model: 512, d_ff: 2048, h: 8, d_k: null, d_v: null, P_drop: 0.1, eps_ls: 0.1, steps: 100000,
       positions: sinusoidal}
scales:
  tiny:
    dim_factor: 0.0625
    step_factor: 0.0004
    flags: [--arch, vanilla_transformer, --share-all-embeddings, --optimizer, adam, --lr, "1", --lr-scheduler, noam,
            --warmup-updates, "20", --max-tokens, "2048", --no-epoch-checkpoints, --log-format, simple,
            --num-workers, "0"]
rows:
  - {id: base, row: base, variant: base, change: {}, paper: {ppl: 4.92, bleu: 25.8, params: 65}}
  - {id: B-dk16, row: B, variant: "d_k=16", change: {d_k: 16, d_v: 64}, paper: {ppl: 5.16, bleu: 25.1, params: 58}}
"""


def test_paired_bootstrap_is_filled_in_when_base_seed_1_lands(tmp_path):
    """A row that ends before base seed 1 has no test; the rebuild after the base lands adds it, once."""
    from fairseq_vanilla.experiments.table.evaluation import fill_significance

    prep, results = tmp_path / "prep", tmp_path / "results"
    (prep / "bin").mkdir(parents=True)
    (prep / "raw").mkdir()
    results.mkdir()
    (prep / "bin" / "pipeline.txt").write_text("src=en\ntgt=de\n")
    refs = [f"der hund {i} läuft über die grüne wiese" for i in range(30)]
    (prep / "raw" / "valid.de").write_text("\n".join(refs) + "\n")

    def write(row_id, row, hyps):
        r = {"id": row_id, "row": row, "seed": 1, "hypotheses": hyps, "lowercase": True, "significance": None}
        (results / f"{row_id}-seed1.json").write_text(json.dumps({**r, "decode": {"split": "valid"}}))

    def fill():
        return fill_significance(T.load_results(str(results)), str(results), str(prep), "base")

    write("B-dk16", "B", refs)  # a perfect system, finished first
    assert fill() == []  # no base yet: nothing to test against
    write("base", "base", [r.split()[0] for r in refs])  # one word of each reference
    assert fill() == ["B-dk16"]
    bleu = json.loads((results / "B-dk16-seed1.json").read_text())["significance"]["bleu"]
    assert bleu["system"] == pytest.approx(100.0) and bleu["delta"] > 90
    assert bleu["p_value"] == pytest.approx(1 / 1001)  # (0 + 1) / (1000 resamples + 1): none reverses it
    assert json.loads((results / "base-seed1.json").read_text())["significance"] is None
    assert fill() == []  # filled once


def test_driver_end_to_end_twice(prepared_model, tmp_path):
    """Two rows × two seeds: four trainings, result files with figures, a table with the paper's columns and a
    p-value for row B; a second run of the same command trains, validates and decodes nothing."""
    table_file = tmp_path / "tiny.yaml"
    table_file.write_text(TINY_TABLE)
    out, results = tmp_path / "work", tmp_path / "results"
    cmd = (
        "table3.sh",
        "--table",
        table_file,
        "--data",
        prepared_model / "prep",
        "--out",
        out,
        "--scale",
        "tiny",
        "--results",
        results,
        "--threads",
        "1",
        "--rows",
        "base,B",
    )
    first = run_script(*cmd, "--jobs", "2").stdout  # Hydra's joblib launcher, two at once
    assert "4 job(s) through hydra/launcher=joblib" in first
    files = sorted(f for f in os.listdir(results) if f.endswith(".json"))
    assert files == ["B-dk16-seed1.json", "B-dk16-seed2.json", "base-seed1.json", "base-seed2.json"]
    r = json.loads((results / "B-dk16-seed2.json").read_text())
    assert r["symbols"]["d_k"] == 1 and r["symbols"]["d_v"] == 4 and r["updates"] == 40 and r["seed"] == 2
    assert "--attention-key-dim 1" in r["command"] and "--seed 2" in r["command"]
    assert len(r["hypotheses"]) == 50 and r["ppl"] > 1 and 0 <= r["bleu"] <= 100 and r["chrf"] > 0
    assert 0 < r["significance"]["bleu"]["p_value"] <= 1 and r["versions"]["fairseq"] == "0.12.3.1"
    gpu = torch.cuda.is_available()
    assert r["versions"]["device"] == (torch.cuda.get_device_name(0) if gpu else f"cpu ({os.cpu_count()} cores)")
    assert r["valid_curve"][-1][0] == 40 and all(ppl > 1 for _, ppl in r["valid_curve"])
    base = json.loads((results / "base-seed1.json").read_text())
    assert base["significance"] is None and base["params"] > r["params"]  # smaller W_Q, W_K
    md = (results / "tiny.md").read_text()
    line_b = next(line for line in md.splitlines() if line.startswith("| B |"))
    assert "| 2 |" in line_b and "| 5.16 | 25.10 | 58 |" in line_b and " ± " in line_b
    assert "train" in first and (results / "tiny.csv").read_text().startswith("row,variant,N")
    # each job is a Hydra job whose folder is its work folder, and records what it was made from
    assert "- job=B-dk16/seed2" in (out / "B-dk16" / "seed2" / ".hydra" / "overrides.yaml").read_text()
    made = json.loads((out / "B-dk16" / "seed2" / "fingerprint.json").read_text())
    assert made == r["fingerprint"] and made["scale"] == "tiny" and made["flags"] == r["flags"]
    assert made["data"] == str(prepared_model / "prep" / "bin") and len(made["data_fingerprint"]) == 16
    assert not list(out.rglob("*.lock"))  # let go at the end

    logs = {p: p.stat().st_mtime for p in out.rglob("*.log")}
    second = run_script(*cmd).stdout
    assert "4 jobs, 4 done already" in second and ": train" not in second
    assert {p: p.stat().st_mtime for p in out.rglob("*.log")} == logs

    # a job whose result file is gone is finished from its stages: no retraining, even in a folder made before
    # fingerprints were kept (its train.log says what it was made from)
    (results / "B-dk16-seed1.json").unlink()
    (out / "B-dk16" / "seed1" / "fingerprint.json").unlink()
    third = run_script(*cmd).stdout  # --jobs 1: Hydra's basic launcher
    assert "1 job(s) through hydra/launcher=basic" in third and "B-dk16 seed 1: ppl" in third
    assert "3 done already" in third and ": train" not in third and ": validate" not in third
    again = json.loads((results / "B-dk16-seed1.json").read_text())
    assert 0 < again["significance"]["bleu"]["p_value"] <= 1
    assert json.loads((out / "B-dk16" / "seed1" / "fingerprint.json").read_text()) == again["fingerprint"]

    # a result made with other flags than the table now gives is not silently reused
    table_file.write_text(TINY_TABLE.replace('--max-tokens, "2048"', '--max-tokens, "1024"'))
    proc = __import__("subprocess").run(
        ["bash", str(ROOT / "scripts" / "table3.sh"), *map(str, cmd[1:])], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "base-seed1.json was made with other flags" in proc.stderr


def test_rows_a_question_rests_on_have_three_seeds_and_the_diagnostics_one_change():
    table = T.load_table(TABLE3)
    rows = {r["id"]: r for r in table["rows"]}
    for rid in ("align", "accum-4x", "A-h1", "C-d1024", "base"):
        assert T.seeds_for(rows[rid], 3, 1) == [1, 2, 3], rid
    assert T.seeds_for(rows["D-drop0.3"], 3, 1) == [1] and T.seeds_for(rows["D-drop0.3"], 3, 2) == [1, 2]
    base = T.row_symbols(table, rows["base"], "multi30k")
    drop = T.row_symbols(table, rows["D-drop0.3"], "multi30k")
    assert {k for k in base if base[k] != drop[k]} == {"P_drop"} and drop["P_drop"] == 0.3
    big, big01 = (T.row_symbols(table, rows[r], "multi30k") for r in ("big", "big-drop0.1"))
    assert {k for k in big if big[k] != big01[k]} == {"P_drop", "steps"} and (big01["P_drop"], big01["steps"]) == (
        0.1,
        2500,
    )
    n8 = T.train_flags(table, rows["C-N8-warmup800"], "multi30k", 1)
    assert n8[n8.index("--warmup-updates") + 1] == "800" and n8.count("--warmup-updates") == 1
    assert n8[n8.index("--encoder-layers") + 1] == "8"


def test_baselines_within_two_bleu_of_each_other_have_three_seeds():
    """The issue's rule: three seeds where a row is within two points of another (lstm and fconv ended 1.3 apart);
    the LSTM without attention, 22 points below the next row, keeps one."""
    table = T.load_table(str(ROOT / "examples/baselines/table.yaml"))
    rows = {r["id"]: r for r in table["rows"]}
    seeds = table["seeds"]
    assert T.seeds_for(rows["lstm"], seeds["base"], seeds["other"]) == [1, 2, 3]
    assert T.seeds_for(rows["fconv"], seeds["base"], seeds["other"]) == [1, 2, 3]
    assert T.seeds_for(rows["lstm-noattn"], seeds["base"], seeds["other"]) == [1]


def test_a_flag_given_twice_is_written_once_with_its_last_value():
    flags = ["--arch", "a", "--share-all-embeddings", "--lr", "1", "--adam-betas", "(0.9, 0.98)", "--lr", "0.5"]
    assert T.last_flags_win(flags + ["--arch", "b"]) == [
        "--share-all-embeddings",
        "--adam-betas",
        "(0.9, 0.98)",
        "--lr",
        "0.5",
        "--arch",
        "b",
    ]
    table = T.load_table(TABLE3)
    for row in table["rows"]:
        flags = T.train_flags(table, row, "multi30k", 1)
        names = [f for f in flags if f.startswith("--")]
        assert len(names) == len(set(names)), row["id"]
    # result files written before (with --lr twice) still match the table: the driver compares the flags as read
    made = json.loads((ROOT / "examples/table3/results/multi30k/A-h1-seed1.json").read_text())
    assert made["flags"].count("--lr") == 2
    row = next(r for r in table["rows"] if r["id"] == "A-h1")
    assert T.last_flags_win(made["flags"]) == T.train_flags(table, row, "multi30k", 1)


@pytest.mark.parametrize("flag", ["--seeds", "--other-seeds", "--jobs", "--threads"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_counts_below_one_are_refused_in_one_line(tmp_path, flag, value):
    proc = __import__("subprocess").run(
        [
            sys.executable,
            "-m",
            "fairseq_vanilla.experiments.table.runner",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            flag,
            value,
        ],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
    )
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {flag}: must be at least 1, got {value}"
    assert not (tmp_path / "o").exists()


def test_a_table_file_that_is_not_a_mapping_is_named(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(T.TableError, match=f"{bad}: a table file is a YAML mapping"):
        T.load_table(str(bad))


@pytest.mark.parametrize(
    "table_file,results",
    [
        ("examples/table3/table3.yaml", "examples/table3/results/multi30k"),
        ("examples/table3/table3.yaml", "examples/table3/results/multi30k-lr1"),
        ("examples/table3/table3.yaml", "examples/table3/results/multi30k-1200"),
        ("examples/positions/table.yaml", "examples/positions/results/short15"),
        ("examples/imdb/table.yaml", "examples/imdb/results/cpu"),
        ("examples/baselines/table.yaml", "examples/baselines/results/multi30k"),
        ("examples/baselines/imdb-padding.yaml", "examples/baselines/results/cpu"),
    ],
)
def test_committed_tables_are_rebuilt_from_their_result_files(table_file, results):
    """The committed Markdown and CSV are exactly what the result files give (with the rows a table reuses from
    another's, as the baselines reuse Table 3's base): nothing edited by hand or left stale."""
    from fairseq_vanilla.experiments.table import render as R
    from fairseq_vanilla.experiments.table.tasks import task_of

    table = T.load_table(str(ROOT / table_file))
    task = task_of(table)
    lines = task.lines(table, T.table_results(table, str(ROOT / results), Path(results).name))
    columns = task.columns(table)
    assert (ROOT / results / f"{table['name']}.md").read_text(encoding="utf-8") == R.to_markdown(lines, columns)
    assert (ROOT / results / f"{table['name']}.csv").read_text(encoding="utf-8") == R.to_csv(lines, columns)


STOCK_TABLE = (
    TINY_TABLE[: TINY_TABLE.index("rows:")]
    .replace("name: tiny", "name: stock")
    .replace("seeds: {base: 2, other: 2}", "seeds: {base: 1, other: 1}\nreuse: {rows: [base], results: tiny_results}")
    + """    stock_flags: [--max-tokens, "2048", --no-epoch-checkpoints, --log-format, simple, --num-workers, "0"]
rows:
  - {id: base, row: base, variant: base, change: {}, paper: {ppl: 4.92, bleu: 25.8, params: 65}}
  - {id: lstm, row: lstm, variant: "LSTM, attention", change: {}, stock: true, arch: lstm,
     flags: [--encoder-embed-dim, "16", --decoder-embed-dim, "16", --decoder-out-embed-dim, "16",
             --encoder-hidden-size, "16", --decoder-hidden-size, "16", --optimizer, adam, --lr, "3e-3"]}
"""
)


def test_a_stock_architecture_row_runs_through_the_driver_and_reuses_the_base(prepared_model, tmp_path):
    """fairseq's own `lstm` as a table row: no Transformer symbol among its flags, the base's budget and loss; the
    base's result files come from another table's results (`reuse`), so only the LSTM is trained."""
    tiny_results = tmp_path / "tiny_results" / "tiny"
    common = ("--data", prepared_model / "prep", "--scale", "tiny", "--threads", "1")
    (tmp_path / "tiny.yaml").write_text(TINY_TABLE.replace("seeds: {base: 2, other: 2}", "seeds: {base: 1, other: 1}"))
    run_script(
        "table3.sh",
        "--table",
        tmp_path / "tiny.yaml",
        "--out",
        tmp_path / "w1",
        "--results",
        tiny_results,
        "--rows",
        "base",
        *common,
    )
    (tmp_path / "stock.yaml").write_text(STOCK_TABLE)
    results = tmp_path / "stock_results"
    out = run_script(
        "table3.sh",
        "--table",
        tmp_path / "stock.yaml",
        "--out",
        tmp_path / "w2",
        "--results",
        results,
        "--rows",
        "base,lstm",
        *common,
    ).stdout
    assert "2 jobs, 1 done already" in out and not (tmp_path / "w2" / "base").exists()
    r = json.loads((results / "lstm-seed1.json").read_text())
    assert "--arch lstm" in r["command"] and "--encoder-layers" not in r["command"]
    assert "--max-update 40" in r["command"] and "--label-smoothing 0.1" in r["command"] and r["updates"] == 40
    assert len(r["hypotheses"]) == 50 and 0 <= r["bleu"] <= 100 and 0 < r["significance"]["bleu"]["p_value"] <= 1
    md = (results / "stock.md").read_text().splitlines()
    lstm_line = next(line for line in md if "LSTM, attention" in line)
    assert lstm_line.startswith("| lstm | LSTM, attention |  |  |  |  |  |  |  | 0.10 | 40 | 1 |")
    assert any(line.startswith("| base | base | 6 | 32 |") for line in md)
    assert sorted(os.listdir(results)) == ["lstm-seed1.json", "stock.csv", "stock.md"]  # the base is not copied


def test_only_a_model_that_attends_to_the_source_gets_its_alignment_scored():
    """The LSTM without attention has no alignment: `--print-alignment` on it crashes fairseq-generate (found when the
    reference links were prepared), so the driver skips that stage for it, and only for it."""
    from fairseq_vanilla.experiments.table.evaluation import has_cross_attention

    baselines = T.load_table(str(ROOT / "examples" / "baselines" / "table.yaml"))
    rows = {r["id"]: r for r in baselines["rows"]}
    attends = {
        row_id: has_cross_attention(T.train_flags(baselines, rows[row_id], "multi30k", 1))
        for row_id in ("lstm", "lstm-noattn", "fconv")
    }
    table3 = T.load_table(TABLE3)
    base = next(r for r in table3["rows"] if r["id"] == "base")
    assert attends == {"lstm": True, "lstm-noattn": False, "fconv": True}
    assert has_cross_attention(T.train_flags(table3, base, "multi30k", 1))


def test_epochs_to_best_is_the_first_epoch_at_the_best_validation_accuracy():
    """Validations once an epoch: the 1-based index of the first maximum; ties go to the earlier epoch."""
    from fairseq_vanilla.experiments.table.tasks.classification import epochs_to_best

    assert epochs_to_best([[704, 0.50], [1408, 0.61], [2112, 0.60]]) == 2
    assert epochs_to_best([[704, 0.85], [1408, 0.87], [2112, 0.87], [2816, 0.86]]) == 2
    assert epochs_to_best([[704, 0.9]]) == 1
    assert epochs_to_best([]) is None


def test_verdicts_compare_with_the_base_row_whatever_its_id():
    """The IMDB padding table's base row is `trans-post`, not `base`: its seeds are still the ones every other row is
    tested against. Welch's t by hand, 3 + 3 seeds of equal spread: Δ = 0.74 − 0.88 = −0.14, se = √(2 · 10⁻⁴ / 3)
    = 0.0081650, df = 4, t(4; 0.975) = 2.7764, half-width 0.02267: [−0.1627, −0.1173], worse."""
    from fairseq_vanilla.experiments.table.tasks import task_of

    table = {
        "kind": "classification",
        "rows": [
            {"id": "lstm-post", "row": "lstm", "variant": "LSTM, post"},
            {"id": "trans-post", "row": "base", "variant": "Transformer, post"},
        ],
    }
    assert T.base_id(table) == "trans-post" and T.base_id({"rows": table["rows"][:1]}) is None

    def result(accuracy):
        return {"accuracy_test": accuracy, "accuracy_valid": accuracy, "params": 1e6, "train_seconds": 60.0}

    scores = {"trans-post": (0.88, 0.87, 0.89), "lstm-post": (0.75, 0.73, 0.74)}
    results = {(rid, seed): result(a) for rid, accs in scores.items() for seed, a in enumerate(accs, 1)}
    lstm, trans = task_of(table).lines(table, results)
    assert lstm["delta_accuracy"] == pytest.approx(-0.14)
    assert (lstm["delta_accuracy_ci"], lstm["verdict"]) == ("[-0.1627, -0.1173]", "worse")
    assert (trans["delta_accuracy"], trans["verdict"]) == (None, None)  # the base is not compared with itself


def test_incomplete_rows_and_holm_give_no_more_verdict_than_the_evidence():
    """Planned seeds and Holm's family by hand. Base 0.88, 0.87, 0.89; rows x and y 0.845, 0.855, 0.865 each:
    Δ = −0.025, se = √(2·10⁻⁴/3) = 0.0081650, t = 3.0619 on 4 df, p = 0.0376 → "worse" alone; Holm over the family
    {x, y}: 2 · 0.0376 = 0.0752 ≥ 0.05 → "within seed noise" for both. Row z planned with three seeds has one: its
    interval (a prediction interval, marked †) stays, its verdict is "incomplete (1 of 3 seeds)" and it is not in the
    family; row w's three seeds are identical (one run given three times): "undetermined"."""
    from fairseq_vanilla.experiments.table.tasks import task_of

    table = {
        "kind": "classification",
        "seeds": {"base": 3, "other": 1},
        "rows": [
            {"id": "base", "row": "base", "variant": "base"},
            {"id": "x", "row": "x", "variant": "x", "seeds": 3},
            {"id": "y", "row": "y", "variant": "y", "seeds": 3},
            {"id": "z", "row": "z", "variant": "z", "seeds": 3},
            {"id": "w", "row": "w", "variant": "w", "seeds": 3},
        ],
    }

    def result(accuracy):
        return {"accuracy_test": accuracy, "accuracy_valid": accuracy, "params": 1e6, "train_seconds": 60.0}

    scores = {"base": (0.88, 0.87, 0.89), "x": (0.845, 0.855, 0.865), "y": (0.845, 0.855, 0.865), "z": (0.85,)}
    scores["w"] = (0.86, 0.86, 0.86)
    results = {(rid, seed): result(a) for rid, accs in scores.items() for seed, a in enumerate(accs, 1)}
    base, x, y, z, w = task_of(table).lines(table, results)
    assert (x["verdict"], x["p_seeds"]) == ("worse", pytest.approx(0.0376, abs=1e-4))
    assert x["verdict_holm"] == y["verdict_holm"] == "within seed noise"
    assert z["verdict"] == "incomplete (1 of 3 seeds)" and z["p_seeds"] is None and z["verdict_holm"] is None
    assert z["delta_accuracy_ci"].endswith(" †")
    assert (w["verdict"], w["verdict_holm"], w["delta_accuracy_ci"]) == ("undetermined", "undetermined", None)
    assert base["verdict"] is None and base["verdict_holm"] is None
    # with x alone in the family its verdict survives: Holm over one test is the test
    del table["rows"][2]
    assert task_of(table).lines(table, {k: v for k, v in results.items() if k[0] != "y"})[1]["verdict_holm"] == "worse"


def test_a_new_task_is_one_table_task_the_driver_asks(tmp_path, monkeypatch):
    """A toy task under its name in the registry (what a new file of experiments/table/tasks/ adds): its table file
    is read with the keys it needs, its result files checked against its figures and ranges, and its table built in
    its columns from its lines after its completion step; the driver asks the task, never its name."""
    from fairseq_vanilla.experiments.table import jobs as J
    from fairseq_vanilla.experiments.table.task import TableTask
    from fairseq_vanilla.experiments.table.tasks import TASKS

    completed = []
    toy = TableTask(
        name="toy",
        table_keys=("target",),
        scale_keys=("flags",),
        missing_inputs=lambda table, prepared: [],
        has_dictionary=os.path.isdir,
        criterion=lambda row: ["--criterion", "cross_entropy"],
        curve="loss",
        evaluate=lambda job: {"score": 0.5},
        figures=("score",),
        ranges={"score": (0.0, 1.0)},
        complete=lambda table, found, results, prepared: completed.append(sorted(found)),
        lines=lambda table, found: [{"id": rid, "score": r["score"]} for (rid, _), r in sorted(found.items())],
        columns=lambda table: (("id", "run", 2), ("score", "score", 3)),
    )
    monkeypatch.setitem(TASKS, "toy", toy)
    path = tmp_path / "toy.yaml"
    path.write_text("name: toy\nkind: toy\nscales: {s: {flags: []}}\nrows:\n  - {id: a, row: base, variant: a}\n")
    with pytest.raises(T.TableError, match=f"{path}: missing 'target'"):
        T.load_table(str(path))
    path.write_text(path.read_text() + "target: 1\n")
    table = T.load_table(str(path))
    results = tmp_path / "results"
    results.mkdir()
    (results / "a-seed1.json").write_text(json.dumps({"id": "a", "seed": 1, "flags": [], "score": 2.0}))
    with pytest.raises(T.TableError, match=r"a-seed1.json: score: 2.0 is not a number in \[0, 1\]"):
        T.load_results(str(results))
    (results / "a-seed1.json").write_text(json.dumps({"id": "a", "seed": 1, "flags": [], "score": 0.25}))
    assert J.rebuild(table, str(results), [str(tmp_path / "out")], str(tmp_path), "s") == (
        "| run | score |\n|---|---|\n| a | 0.250 |\n"
    )
    assert (tmp_path / "out" / "toy.csv").read_text() == "id,score\na,0.2500\n" and completed == [[("a", 1)]]
    path.write_text(path.read_text().replace("kind: toy", "kind: toys"))
    with pytest.raises(T.TableError, match="kind must be translation or classification or toy, got 'toys'"):
        T.load_table(str(path))


def test_the_scores_are_headed_by_the_split_the_table_decodes():
    """Table 3 decodes valid ("PPL (dev)"); the positions table decodes test2016, and its headings say so."""
    from fairseq_vanilla.experiments.table.tasks import task_of

    def headings(table_file):
        table = T.load_table(str(ROOT / table_file))
        return [heading for _, heading, _ in task_of(table).columns(table)]

    assert {"PPL (dev)", "BLEU (dev)"} <= set(headings("examples/table3/table3.yaml"))
    positions = headings("examples/positions/table.yaml")
    assert {"PPL (test)", "BLEU (test)"} <= set(positions) and not any("(dev)" in h for h in positions)
