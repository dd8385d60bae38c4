"""Paired bootstrap (sacreBLEU's own), corpus BLEU/chrF, seed spread, and scripts/compare.sh on hand-made systems."""

import math

import pytest

from fairseq_vanilla.evaluation.significance import corpus_scores, mean_std, paired_bootstrap, perplexity
from tests.conftest import run_script

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
