"""BLEU and chrF by source-length bucket (evaluation/length_buckets.py) against hand-worked values."""

import pytest

from fairseq_vanilla.evaluation.length_buckets import (
    Bucket,
    buckets_from_edges,
    buckets_of_min_size,
    plot_by_length,
    scores_by_length,
    token_lengths,
)


def test_default_buckets_are_1_10_11_15_16_20_and_21_up():
    buckets = buckets_from_edges()
    assert [b.label for b in buckets] == ["1–10", "11–15", "16–20", "21+"]
    assert [b.holds(10) for b in buckets] == [True, False, False, False]
    assert [b.holds(21) for b in buckets] == [False, False, False, True]
    with pytest.raises(ValueError, match="increasing"):
        buckets_from_edges((10, 10))


def test_buckets_of_min_size_close_at_the_first_length_that_fills_them():
    # counts by length {1: 2, 2: 1, 3: 3, 5: 1, 8: 1}, at least 3 a bucket: 1–2 holds 3, 3–3 holds 3, and the
    # remaining 2 (lengths 5, 8) are too few for a bucket of their own, so they join the last one: 3+
    assert buckets_of_min_size([3, 1, 5, 3, 2, 8, 1, 3], 3) == [Bucket(1, 2), Bucket(3, None)]
    assert buckets_of_min_size([3, 1, 5, 3, 2, 8, 1, 3], 2) == [Bucket(1, 1), Bucket(2, 3), Bucket(4, None)]
    assert buckets_of_min_size([4, 4], 100) == [Bucket(1, None)]  # too few for two buckets


def test_a_bucket_is_a_corpus_bleu_and_chrf_hand_worked():
    # bucket 1–10: "the cat sat on the mat" against "the cat sat on a mat" (6 words each, brevity penalty 1):
    # matched n-grams 5/6, 3/5, 2/4, 1/3 → BLEU = (5/6 · 3/5 · 1/2 · 1/3)^¼ = (1/12)^¼ = 53.73; pooled with the
    # exact "a dog runs" the counts are 8/9, 5/7, 3/5, 1/3 → (8/63)^¼ = 59.70, not the mean of sentence BLEUs
    hyps = ["the cat sat on the mat", "a dog runs", "x " * 11, "one two three four five six seven eight nine ten"]
    refs = ["the cat sat on a mat", "a dog runs", "y " * 11, "one two three four five six seven eight nine ten"]
    src = [6, 3, 12, 30]
    rows = scores_by_length(src, hyps, refs)
    assert [(r["bucket"], r["n"]) for r in rows] == [("1–10", 2), ("11–15", 1), ("16–20", 0), ("21+", 1)]
    assert rows[0]["bleu"] == pytest.approx(100 * (8 / 63) ** 0.25, abs=0.01)
    only_first = scores_by_length([6], hyps[:1], refs[:1], buckets=[Bucket(1, 10)])
    assert only_first[0]["bleu"] == pytest.approx(100 * (1 / 12) ** 0.25, abs=0.01)
    assert rows[1]["bleu"] == 0.0 and rows[1]["chrf"] == 0.0  # no character or word in common
    assert rows[2]["bleu"] is None and rows[2]["chrf"] is None  # an empty bucket has no score
    assert rows[3]["bleu"] == pytest.approx(100.0) and rows[3]["chrf"] == pytest.approx(100.0)
    assert 0 < rows[0]["chrf"] < 100
    assert rows[0]["length_ratio"] == pytest.approx(1.0)  # 6 + 3 hypothesis words against 6 + 3 reference words
    short = scores_by_length([2], ["a b"], ["a b c d"], buckets=[Bucket(1, 10)])[0]
    assert short["length_ratio"] == pytest.approx(0.5) and rows[2]["length_ratio"] is None


def test_min_size_rule_and_errors():
    lengths = token_lengths(["a b", "a b c", "a", "a b c d e f"])
    assert lengths == [2, 3, 1, 6]
    rows = scores_by_length(lengths, ["a b"] * 4, ["a b"] * 4, min_size=2)
    assert [(r["bucket"], r["n"]) for r in rows] == [("1–2", 2), ("3+", 2)]
    with pytest.raises(ValueError, match="2 source lengths, 1 hypotheses"):
        scores_by_length([1, 2], ["a"], ["a"])
    with pytest.raises(ValueError, match="fall in no bucket"):
        scores_by_length([0], ["a"], ["a"])


def test_plot_by_length_writes_a_png(tmp_path):
    rows = scores_by_length([3, 12], ["a b c", "d e"], ["a b c", "d f"])
    path = tmp_path / "bleu.png"
    plot_by_length({"lstm": rows, "transformer": rows}, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="has buckets"):
        plot_by_length({"a": rows, "b": rows[:1]}, str(path))


def by_length_script_and_folders(tmp_path):
    """scripts/bleu-by-length.py as a module, and an empty prepared folder (bin/pipeline.txt: en→de, lower-cased)
    and results folder under ``tmp_path``."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bbl", Path(__file__).parents[1] / "scripts" / "bleu-by-length.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    data, results = tmp_path / "data", tmp_path / "results"
    for sub in ("bin", "bpe", "raw"):
        (data / sub).mkdir(parents=True)
    results.mkdir()
    (data / "bin" / "pipeline.txt").write_text("src=en\ntgt=de\nlower=1\n")
    return script, data, results


def test_bleu_by_length_script_means_seeds_and_keeps_foreign_files(tmp_path, capsys):
    """scripts/bleu-by-length.py on a hand-made prepared folder: two seeds of a row, one bucket each scoring 100 and
    0, so the mean is 50; a row without a result file and an --out it did not write are refused in one line."""
    import json

    script, data, results = by_length_script_and_folders(tmp_path)
    (data / "bpe" / "valid.en").write_text("a b\nc d e f g h i j k l m n\n")  # lengths 2 and 12
    (data / "raw" / "valid.de").write_text("ein hund rennt schnell\nzwei katzen schlafen hier\n")
    hyps = {1: ["ein hund rennt schnell", "zwei katzen schlafen hier"], 2: ["x y z w", "zwei katzen schlafen hier"]}
    for seed, h in hyps.items():
        record = {"id": "lstm", "seed": seed, "variant": "LSTM", "lowercase": True, "hypotheses": h}
        (results / f"lstm-seed{seed}.json").write_text(json.dumps(record))
    out = tmp_path / "by-length"
    args = ["--data", str(data), "--results", str(results), "--out", str(out), "--min-size", "1"]
    assert script.main(args + ["--rows", "lstm"]) == 0
    doc = json.loads((tmp_path / "by-length.json").read_text())
    short = doc["rows"]["lstm"]["mean"]["edges"][0]  # bucket 1–10: seed 1 exact (100), seed 2 nothing (0)
    assert (short["bucket"], short["n"], short["bleu"]) == ("1–10", 1, pytest.approx(50.0))
    assert doc["rows"]["lstm"]["mean"]["edges"][1]["bleu"] == pytest.approx(100.0)  # 11–15: both seeds exact
    assert doc["rows"]["lstm"]["mean"]["edges"][2]["bleu"] is None  # 16–20 is empty
    assert doc["buckets"]["min1"] == ["1–2", "3+"]
    assert "| lstm | 2 | 50.00" in (tmp_path / "by-length.md").read_text()
    assert (tmp_path / "by-length.png").stat().st_size > 5000
    assert script.main(args + ["--rows", "lstm"]) == 0  # its own output: rewritten
    capsys.readouterr()
    assert script.main(args + ["--rows", "lstm,fconv"]) == 2
    assert capsys.readouterr().err == f"error: --rows: no result file for fconv in {results}\n"
    foreign = tmp_path / "notes"
    foreign.with_suffix(".json").write_text('{"mine": 1}')
    args[args.index(str(out))] = str(foreign)
    assert script.main(args + ["--rows", "lstm"]) == 2
    assert "exists and is not this command's output" in capsys.readouterr().err
    assert foreign.with_suffix(".json").read_text() == '{"mine": 1}'
    readme = tmp_path / "README"  # --out README with a README.md beside it and no README.json: refused, kept
    readme.with_suffix(".md").write_text("# notes\n")
    args[args.index(str(foreign))] = str(readme)
    assert script.main(args + ["--rows", "lstm"]) == 2
    assert "README.md: exists and is not this command's output" in capsys.readouterr().err
    assert readme.with_suffix(".md").read_text() == "# notes\n" and not readme.with_suffix(".json").exists()
    assert script.main(args + ["--rows", "lstm", "--force"]) == 0  # --force: the user says the files may go
    assert "| lstm | 2 | 50.00" in readme.with_suffix(".md").read_text()


def test_committed_by_length_tables_are_rebuilt_from_their_json():
    """examples/baselines/bleu-by-length.md is exactly what its JSON gives, and the JSON's means are its seeds'."""
    import json
    from pathlib import Path

    from fairseq_vanilla.evaluation.length_buckets import by_length_markdown, mean_over_seeds

    folder = Path(__file__).parents[1] / "examples" / "baselines"
    doc = json.loads((folder / "bleu-by-length.json").read_text(encoding="utf-8"))
    assert (folder / "bleu-by-length.md").read_text(encoding="utf-8") == by_length_markdown(doc)
    for row in doc["rows"].values():
        for name in doc["buckets"]:
            assert row["mean"][name] == mean_over_seeds([seed[name] for seed in row["seeds"].values()])


def test_plot_by_length_draws_each_seed_and_refuses_other_buckets(tmp_path):
    """With seeds, every seed is a dot on the figure (one PathCollection per bucket); a seed with other buckets is
    refused like a system with other buckets."""
    rows = scores_by_length([3, 12], ["a b c", "d e"], ["a b c", "d f"])
    other = scores_by_length([3, 12], ["a b c", "x y"], ["a b c", "d f"])
    path = tmp_path / "spread.png"
    plot_by_length({"sin": rows}, str(path), seeds={"sin": [rows, other]})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="has buckets"):
        plot_by_length({"sin": rows}, str(path), seeds={"sin": [rows, rows[:1]]})


def test_bleu_by_length_script_takes_split_and_edges(tmp_path, capsys):
    """--split test reads DATA/bpe/test.SRC and DATA/raw/test.TGT; --edges 2,5 gives buckets 1–2, 3–5, 6+ (the
    sentences of lengths 2, 4 and 7 one in each); bad edges are one line."""
    import json

    script, data, results = by_length_script_and_folders(tmp_path)
    (data / "bpe" / "test.en").write_text("a b\nc d e f\ng h i j k l m\n")  # lengths 2, 4, 7
    (data / "raw" / "test.de").write_text("ein hund rennt schnell\nzwei katzen schlafen hier\ndrei vögel singen laut\n")
    hyps = ["ein hund rennt schnell", "q r s t", "drei vögel singen laut"]  # the middle one shares nothing
    for seed in (1, 2):
        record = {"id": "none", "seed": seed, "variant": "no positions", "lowercase": True, "hypotheses": hyps}
        (results / f"none-seed{seed}.json").write_text(json.dumps(record))
    out = tmp_path / "by-length"
    args = ["--data", str(data), "--results", str(results), "--out", str(out), "--rows", "none", "--split", "test"]
    assert script.main(args + ["--edges", "2,5", "--plot", "edges"]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["buckets"]["edges"] == ["1–2", "3–5", "6+"]
    got = [(b["n"], b["bleu"]) for b in doc["rows"]["none"]["mean"]["edges"]]
    assert got == [(1, pytest.approx(100.0)), (1, pytest.approx(0.0)), (1, pytest.approx(100.0))]
    assert doc["source"].endswith("test.en") and doc["reference"].endswith("test.de")
    capsys.readouterr()
    assert script.main(args + ["--edges", "5,2", "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --edges: ") and err.count("\n") == 1
