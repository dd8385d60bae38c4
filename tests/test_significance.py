"""Paired bootstrap (sacreBLEU's own), the seed-aware comparison, corpus BLEU/chrF, seed spread, and
scripts/compare.sh on hand-made systems and on the committed Table 3 hypotheses."""

import gzip
import json
import math
import os
import random
from pathlib import Path

import pytest

from fairseq_vanilla.evaluation.significance import (
    compare_seeded_systems,
    corpus_scores,
    mean_std,
    paired_bootstrap,
    paired_seed_comparison,
    perplexity,
    seed_comparison,
)
from tests.conftest import ROOT, run_script

REFS = [f"the cat number {i} sat on the mat near the door" for i in range(60)]
GOOD = list(REFS)
BAD = [f"a dog number {i} stood by the wall far from home" for i in range(60)]


def test_identical_systems_are_not_different():
    r = paired_bootstrap(GOOD, GOOD, REFS, n_samples=200)
    assert r["bleu"]["delta"] == 0.0 and r["chrf"]["delta"] == 0.0
    assert r["bleu"]["p_value"] == pytest.approx(1.0) and r["chrf"]["p_value"] == pytest.approx(1.0)


def test_a_clearly_better_system_is_significant():
    """B is perfect on 45 of 60 sentences where A is wrong everywhere: p is the smallest bootstrap can give."""
    half_good = GOOD[:45] + BAD[45:]
    r = paired_bootstrap(BAD, half_good, REFS, n_samples=200)
    assert r["bleu"]["baseline"] < 5 and r["bleu"]["system"] > 60 and r["bleu"]["delta"] > 55
    assert r["bleu"]["p_value"] < 0.05 and r["chrf"]["p_value"] < 0.05
    assert r["bleu"]["p_value"] == pytest.approx(1 / 201)  # (0 + 1) / (n_samples + 1): no resample reverses it


def test_corpus_scores_by_hand():
    assert corpus_scores(GOOD, REFS)["bleu"] == pytest.approx(100.0)
    assert corpus_scores([r.upper() for r in REFS], REFS, lowercase=True)["bleu"] == pytest.approx(100.0)
    # one 4-word hypothesis against a 4-word reference with 3 unigram, 2 bigram, 1 trigram, 0 4-gram matches:
    # sacreBLEU's default 'exp' smoothing: p4 = 1 / (2 · 1) over 1 candidate 4-gram → (3/4 · 2/3 · 1/2 · 1/2)^(1/4)
    hyp, ref = ["a b c x"], ["a b c d"]
    expected = 100 * (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25
    assert corpus_scores(hyp, ref)["bleu"] == pytest.approx(expected, abs=1e-6)


def test_mean_std_and_perplexity_by_hand():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert mean_std([4.5]) == {"mean": 4.5, "std": 0.0, "n": 1}
    assert perplexity(2.0) == 4.0 and perplexity(0.0) == 1.0
    assert math.isclose(perplexity(math.log2(4.92)), 4.92)


def test_unequal_lengths_name_the_problem():
    with pytest.raises(ValueError, match="59 hypotheses but 60 references"):
        paired_bootstrap(GOOD[:59], GOOD, REFS)


def test_compare_script(tmp_path):
    a, b, ref = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "ref.txt"
    a.write_text("\n".join(BAD) + "\n")
    b.write_text("\n".join(GOOD[:45] + BAD[45:]) + "\n")
    ref.write_text("\n".join(REFS) + "\n")
    out = run_script("compare.sh", a, b, ref, "--samples", "200").stdout
    bleu_line = next(line for line in out.splitlines() if line.startswith("BLEU"))
    assert "p = 0.0050" in bleu_line and "significant at 0.05" in bleu_line
    short = tmp_path / "short.txt"
    short.write_text("\n".join(GOOD[:10]) + "\n")
    with pytest.raises(AssertionError, match=f"{short}: 10 lines, but the reference {ref} has 60"):
        run_script("compare.sh", a, short, ref)


def test_welch_interval_by_hand():
    """A = 1, 2, 3 and B = 4, 5, 6: s² = 1 each, SE = √(1/3 + 1/3) = 0.8165, Welch df = (2/3)² / (2 · (1/3)² / 2) = 4,
    t(0.975, 4) = 2.7764: Δ = 3 ± 2.2670 → [0.7330, 5.2670], p = 2·P(T₄ > 3 / 0.8165 = 3.674) = 0.0213."""
    r = seed_comparison([1, 2, 3], [4, 5, 6])
    assert r["method"] == "welch" and r["df"] == pytest.approx(4.0)
    assert (r["delta"], r["low"], r["high"]) == pytest.approx((3.0, 0.7330, 5.2670), abs=1e-4)
    assert r["p_value"] == pytest.approx(0.0213, abs=1e-4) and r["verdict"] == "better"
    assert seed_comparison([4, 5, 6], [1, 2, 3])["verdict"] == "worse"


def test_one_seed_is_judged_by_a_prediction_interval_by_hand():
    """Base seeds 36.50, 34.87, 35.21 (Table 3): mean 35.5267, s = 0.8599, t(0.975, 2) = 4.3027, √(1 + 1/3) = 1.1547:
    one run is within seed noise unless it lies outside 35.5267 ± 4.2722 = [31.25, 39.80]."""
    base = [36.50, 34.87, 35.21]
    for one, verdict in ((38.49, "within seed noise"), (31.0, "worse"), (40.0, "better")):
        r = seed_comparison(base, [one])
        assert r["method"] == "prediction" and r["df"] == 2.0 and r["verdict"] == verdict
        assert (r["low"], r["high"]) == pytest.approx((one - 35.5267 - 4.2722, one - 35.5267 + 4.2722), abs=1e-3)
    with pytest.raises(ValueError, match="one seed per system"):
        seed_comparison([35.0], [36.0])


def test_paired_interval_by_hand_and_why_pairing():
    """d = b − a = 0.05, 0.10, 0.05: mean 0.0667, s_d = 0.02887, SE = 0.016667, t(0.975, 2) = 4.3027: [−0.0050,
    0.1384], p = 2·P(T₂ > 4) = 1 − 4/√18 = 0.0572. The same classifiers (0.1, 0.5, 0.9) scored two ways with a steady
    gap 0.10–0.12: paired, better; as two independent sets of seeds (Welch), the runs' own spread hides it."""
    r = paired_seed_comparison([0.10, 0.20, 0.30], [0.15, 0.30, 0.35])
    assert (r["delta"], r["low"], r["high"]) == pytest.approx((0.06667, -0.0050, 0.1384), abs=1e-4)
    assert r["p_value"] == pytest.approx(0.0572, abs=1e-4) and r["verdict"] == "within seed noise"
    a, b = [0.1, 0.5, 0.9], [0.2, 0.61, 1.02]
    assert (
        paired_seed_comparison(a, b)["verdict"] == "better" and seed_comparison(a, b)["verdict"] == "within seed noise"
    )
    with pytest.raises(ValueError, match="≥ 2 pairs"):
        paired_seed_comparison([0.1], [0.2])


def _noisy(refs, rate, rng):
    """A system's output: each word of the reference dropped with probability ``rate``."""
    return [" ".join(w for w in r.split() if rng.random() >= rate) or r.split()[0] for r in refs]


def _write(folder, name, lines):
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_compare_script_calibration_on_synthetic_seeds(tmp_path):
    """Seeds of one system (10 % of words dropped, a different draw a seed) against each other: within seed noise;
    against visibly damaged copies (40 % dropped): the first is better. The last line is the verdict."""
    rng = random.Random(7)
    words = "the a cat dog sat ran on under mat house near far door window red small".split()
    refs = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)]
    ref = _write(tmp_path, "ref.txt", refs)
    good = [_write(tmp_path, f"good{s}.txt", _noisy(refs, 0.10, random.Random(s))) for s in range(4)]
    bad = [_write(tmp_path, f"bad{s}.txt", _noisy(refs, 0.40, random.Random(100 + s))) for s in range(3)]
    out = run_script("compare.sh", good[0], ",".join(good[1:3]), ref).stdout.splitlines()
    assert out[-1] == "verdict: within seed noise" and out[0].startswith("system A: 1 seed(s)")
    out = run_script("compare.sh", ",".join(good[:3]), ",".join(bad), ref).stdout.splitlines()
    assert out[-1] == "verdict: A better" and out[1].startswith("system B: 3 seed(s)")
    assert any(line.startswith("BLEU  Δ(B−A)") and "Welch" in line for line in out)
    out = run_script("compare.sh", ",".join(bad), ",".join(good[:3]), ref).stdout.splitlines()
    assert out[-1] == "verdict: B better"


def test_compare_seeded_systems_reports_each_metric():
    refs = [f"the cat number {i} sat on the mat near the door" for i in range(40)]
    a = [_noisy(refs, 0.3, random.Random(s)) for s in range(3)]
    b = [list(refs), _noisy(refs, 0.02, random.Random(9))]
    r = compare_seeded_systems(a, b, refs)
    perfect, other = corpus_scores(b[0], refs)["bleu"], corpus_scores(b[1], refs)["bleu"]
    assert perfect == pytest.approx(100.0) and other < 100.0
    assert r["systems"]["b"]["bleu"] == {
        "mean": pytest.approx((perfect + other) / 2),
        "std": pytest.approx(abs(perfect - other) / math.sqrt(2)),
        "n": 2,
    }
    assert r["comparison"]["bleu"]["delta"] == pytest.approx((perfect + other) / 2 - r["systems"]["a"]["bleu"]["mean"])
    assert r["verdict"] == "better" and r["comparison"]["chrf"]["verdict"] == "better"
    # two copies of one perfect system have no spread: no verdict
    assert compare_seeded_systems(a, [list(refs), list(refs)], refs)["verdict"] == "undetermined"


MULTI30K = Path(os.environ.get("FAIRSEQ_VANILLA_DATA", ROOT.parent / "shared" / "data")) / "multi30k"


@pytest.mark.skipif(
    not (MULTI30K / "val.de.gz").exists() and not os.environ.get("CI"), reason="Multi30k not found (CI requires it)"
)
def test_compare_script_on_the_committed_base_seeds(tmp_path):
    """Table 3's base seed 1 against seeds 2 and 3 (the committed hypotheses, Multi30k val): within seed noise, where
    the paired bootstrap of seed 1 against seed 2 alone calls the difference significant (p < 0.05)."""
    results = ROOT / "examples" / "table3" / "results" / "multi30k"
    hyps = {s: json.loads((results / f"base-seed{s}.json").read_text())["hypotheses"] for s in (1, 2, 3)}
    with gzip.open(MULTI30K / "val.de.gz", "rt", encoding="utf-8") as f:
        ref = _write(tmp_path, "val.de", [line.rstrip("\n") for line in f])
    files = {s: _write(tmp_path, f"base{s}.txt", h) for s, h in hyps.items()}
    out = run_script("compare.sh", files[1], f"{files[2]},{files[3]}", ref, "--lowercase").stdout.splitlines()
    assert out[-1] == "verdict: within seed noise"
    single = run_script("compare.sh", files[1], files[2], ref, "--lowercase").stdout
    bleu = next(line for line in single.splitlines() if line.startswith("BLEU"))
    assert "significant at 0.05" in bleu and "test-set noise only" in single


def test_no_direction_from_seeds_without_spread():
    """Identical scores over seeds measure no training variance: no interval, no p, no direction."""
    c = seed_comparison([35.0] * 3, [35.01] * 3)
    assert c["verdict"] == "undetermined" and c["low"] is None and c["p_value"] is None
    assert c["delta"] == pytest.approx(0.01) and "no spread" in c["reason"]
    # one flat side is enough: three copies of one run are not three training runs
    assert seed_comparison([35.0] * 3, [34.0, 35.0, 36.0])["verdict"] == "undetermined"
    # a one-seed system against a flat seeded one: the prediction interval would have zero width
    assert seed_comparison([35.0, 35.0], [36.0])["verdict"] == "undetermined"
    # a real spread, however small, still gives a verdict
    assert seed_comparison([35.0, 35.1, 35.2], [36.0, 36.1, 36.2])["verdict"] == "better"


def test_equivalence_by_hand():
    """TOST by hand. A = 35, 36, 37 and B = 35.5, 36.5, 37.5: Δ = 0.5, s² = 1 each, se = √(1/3 + 1/3) = 0.8165,
    Welch df = (2/3)² / ((1/3)²/2 · 2) = 4, t(0.95, 4) = 2.1318: the 90 % interval 0.5 ± 1.7406 = [−1.24, +2.24]
    leaves ±1: not shown equal; p = max(P(T₄ > 1.5/0.8165 = 1.837) = 0.0700, P(T₄ < −0.5/0.8165) = 0.2867)."""
    from fairseq_vanilla.evaluation.seed_statistics import MARGINS, equivalence

    r = equivalence([35.0, 36.0, 37.0], [35.5, 36.5, 37.5], MARGINS["bleu"])
    assert r["verdict"] == "not shown equal" and r["df"] == pytest.approx(4.0)
    assert (r["low"], r["high"]) == (pytest.approx(0.5 - 1.7406, abs=1e-4), pytest.approx(0.5 + 1.7406, abs=1e-4))
    assert r["p_value"] == pytest.approx(0.2867, abs=1e-4) and r["confidence"] == pytest.approx(0.90)
    # the same data within a margin of 3 is equal: [−1.24, +2.24] ⊂ (−3, 3)
    assert equivalence([35.0, 36.0, 37.0], [35.5, 36.5, 37.5], 3.0)["verdict"] == "equal"
    # s² = 0.04 each: se = 0.1633, interval 0.1 ± 0.3481 ⊂ ±1; p = P(T₄ < −0.9/0.1633 = −5.511) = 0.0026
    tight = equivalence([35.0, 35.2, 35.4], [35.1, 35.3, 35.5], 1.0)
    assert tight["verdict"] == "equal" and tight["p_value"] == pytest.approx(0.0026, abs=1e-4)
    # "within seed noise" is not "equal": a 2-BLEU loss with wide seeds passes the t test but not TOST
    wide_a, wide_b = [34.0, 35.5, 37.0], [32.0, 33.5, 35.0]
    assert seed_comparison(wide_a, wide_b)["verdict"] == "within seed noise"
    assert equivalence(wide_a, wide_b, 1.0)["verdict"] == "not shown equal"
    assert equivalence([35.0] * 3, [35.0] * 3, 1.0)["verdict"] == "undetermined"
    with pytest.raises(ValueError, match="margin must be positive"):
        equivalence(wide_a, wide_b, 0.0)


def test_holm_by_hand():
    """Sorted 0.01, 0.03, 0.04 of m = 3: 3·0.01 = 0.03, max(0.03, 2·0.03) = 0.06, max(0.06, 1·0.04) = 0.06."""
    from fairseq_vanilla.evaluation.seed_statistics import holm, holm_verdict

    assert holm([0.01, 0.04, 0.03]) == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06)]
    assert holm([0.01, None, 0.02]) == [pytest.approx(0.02), None, pytest.approx(0.02)]  # m = 2: None not counted
    assert holm([0.2, 0.9]) == [pytest.approx(0.4), pytest.approx(0.9)] and holm([0.6, 0.7, 0.8])[0] == 1.0
    assert holm_verdict("better", 0.03) == "better" and holm_verdict("better", 0.06) == "within seed noise"
    assert holm_verdict("worse", 0.001) == "worse" and holm_verdict("within seed noise", 0.4) == "within seed noise"
    assert (
        holm_verdict("undetermined", None) == "undetermined" and holm_verdict("incomplete (1 of 3 seeds)", None) is None
    )


def test_compare_script_gives_no_direction_for_one_run_given_as_every_seed(tmp_path):
    """compare.sh A1,A1,A1 B1,B1,B1 REF: the same files three times are one run, not three seeds."""
    a, b, ref = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "ref.txt"
    a.write_text("\n".join(BAD) + "\n")
    b.write_text("\n".join(GOOD[:45] + BAD[45:]) + "\n")
    ref.write_text("\n".join(REFS) + "\n")
    out = run_script("compare.sh", f"{a},{a},{a}", f"{b},{b},{b}", ref).stdout
    assert out.splitlines()[-1] == "verdict: undetermined"
    assert "no interval: no spread over the 3 seeds of A and the 3 seeds of B" in out and "p =" not in out
