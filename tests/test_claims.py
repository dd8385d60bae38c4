"""Every comparative sentence of an answer page is a checked claim: its claims file (``examples/**/*claims.yaml``)
recomputed from the committed result files, each claim named by a sentence of its page and each name a claim."""

from pathlib import Path

import pytest

from fairseq_vanilla.evaluation import claims as C
from fairseq_vanilla.experiments.table import spec as T
from fairseq_vanilla.experiments.table.tasks import task_of
from tests.conftest import ROOT

CLAIM_FILES = sorted(ROOT.glob("examples/**/*claims.yaml"))
_TABLES = {}


def table_results(claim):
    """The result files and the Holm verdicts (row id → verdict) of a claim's table and results folder, read once;
    for a claim about one length bucket, its seeds' scores in that bucket."""
    if "by_length" in claim:
        import json

        doc = json.loads(Path(claim["by_length"]).read_text(encoding="utf-8"))
        return C.bucket_results(doc, claim["bucket"]), {}
    key = (claim["table"], claim["results"])
    if key not in _TABLES:
        table = T.load_table(claim["table"])
        results = T.table_results(table, claim["results"], Path(claim["results"]).name)
        _TABLES[key] = results, {line["id"]: line["verdict_holm"] for line in task_of(table).lines(table, results)}
    return _TABLES[key]


@pytest.mark.parametrize("path", CLAIM_FILES, ids=[str(p.relative_to(ROOT)) for p in CLAIM_FILES])
def test_every_claim_holds_on_the_committed_results(path):
    problems = []
    for claim in C.load_claims(str(path))["claims"]:
        results, holm = table_results(claim)
        problems += C.check_claim(claim, *C.recompute(claim, results, holm))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CLAIM_FILES, ids=[str(p.relative_to(ROOT)) for p in CLAIM_FILES])
def test_every_claim_is_named_by_its_page_and_every_name_is_a_claim(path):
    data = C.load_claims(str(path))
    text = Path(data["page"]).read_text(encoding="utf-8")
    unreferenced, unknown = C.unreferenced_and_unknown([c["id"] for c in data["claims"]], text)
    assert not unreferenced, f"{data['page']}: no sentence names the claims {unreferenced}"
    loaded = [C.load_claims(str(f)) for f in CLAIM_FILES]
    claims_of_page = {c["id"] for other in loaded if other["page"] == data["page"] for c in other["claims"]}
    assert set(unknown) <= claims_of_page, f"{data['page']}: names claims that no claims file holds: {unknown}"


def test_at_least_four_answer_pages_have_claims():
    assert len({C.load_claims(str(p))["page"] for p in CLAIM_FILES}) >= 4


def test_a_claim_edited_to_a_wrong_verdict_or_delta_fails():
    """Hand-made seeds: A 35, 36, 37 and B 38.0, 38.5, 39.0. Δ = 2.5, se = √(1/3 + 0.25/3) = 0.6455, Welch df
    = 0.4167² / ((1/3)²/2 + (0.25/3)²/2) = 2.94, t ≈ 3.18: [+0.44, +4.56], better."""
    results = {("a", s): {"bleu": v, "ppl": 10 - v / 10} for s, v in enumerate((35.0, 36.0, 37.0), 1)}
    results |= {("b", s): {"bleu": v, "ppl": 10 - v / 10} for s, v in enumerate((38.0, 38.5, 39.0), 1)}
    claim = {"id": "x", "a": "a", "b": "b", "metric": "bleu", "test": "welch", "verdict": "better", "delta": "+2.50"}
    assert C.check_claim(claim, *C.recompute(claim, results)) == []
    wrong = C.check_claim(claim | {"verdict": "within seed noise"}, *C.recompute(claim, results))
    assert wrong == ["claim x (b against a, bleu): verdict 'better', the claim says 'within seed noise'"]
    assert C.check_claim(claim | {"delta": "+2.4"}, *C.recompute(claim, results)) == [
        "claim x (b against a, bleu): Δ +2.5, the claim says +2.4"
    ]
    # PPL: lower is better, so B's lower PPL is "better" and Δ keeps the metric's own sign (B − A = −0.25)
    ppl = claim | {"metric": "ppl", "delta": "-0.25"}
    assert C.check_claim(ppl, *C.recompute(ppl, results)) == []
    # equal needs TOST: a 2.5-BLEU difference is not equal within ±1
    tost = claim | {"test": "tost", "verdict": "equal"}
    assert C.check_claim(tost, *C.recompute(tost, results))[0].endswith(
        "verdict 'not shown equal', the claim says 'equal'"
    )


def test_a_committed_claim_edited_to_a_wrong_verdict_fails():
    """The first committed claim, its verdict changed: the check names it."""
    data = C.load_claims(str(CLAIM_FILES[0]))
    claim = data["claims"][0]
    results, holm = table_results(claim)
    verdict, delta = C.recompute(claim, results, holm)
    other = next(v for v in ("better", "worse", "within seed noise") if v != verdict)
    problems = C.check_claim(claim | {"verdict": other}, verdict, delta)
    assert problems and problems[0].startswith(f"claim {claim['id']} ")


def test_a_page_names_its_claims_by_link():
    text = "h = 1 is better (claim [h1-bleu](claims.yaml)); see claims [n8](../x/claims.yaml#n8), [big](claims.yaml)"
    text += " and claim h2, [a link](README.md), [claims.yaml](claims.yaml)."
    assert C.page_references(text) == ["h1-bleu", "n8", "big"]
    assert C.unreferenced_and_unknown(["h1-bleu", "big", "x"], text) == (["x"], ["n8"])


def test_a_claims_file_of_the_wrong_shape_is_named(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("page: p.md\nclaims:\n  - {id: a, table: t, results: r, a: x, b: y, metric: bleu, test: z}\n")
    with pytest.raises(C.ClaimError, match=f"{bad}: claim a: missing verdict, delta"):
        C.load_claims(str(bad))
    bad.write_text("- a\n")
    with pytest.raises(C.ClaimError, match="a mapping with `page` and a list `claims`"):
        C.load_claims(str(bad))


def test_a_claim_about_one_length_bucket_reads_its_seeds_there(tmp_path):
    """bucket_results: a bleu-by-length document's seeds in one bucket; a claim on bucket 16–25 recomputes Welch's
    Δ from them (hand-made: sinusoidal 20, 22, 24 against learned 10, 11, 12: Δ −11.0, worse)."""
    doc = {"buckets": {"edges": ["1–15", "16–25", "26+"]}, "rows": {}}
    for row, bleus in (("sinusoidal", (20, 22, 24)), ("learned", (10, 11, 12))):
        seeds = {str(i + 1): {"edges": [{"bleu": 30.0}, {"bleu": b}, {"bleu": 5.0}]} for i, b in enumerate(bleus)}
        doc["rows"][row] = {"seeds": seeds}
    results = C.bucket_results(doc, "16–25")
    assert results[("learned", 2)] == {"bleu": 11}
    claim = {"id": "x", "a": "sinusoidal", "b": "learned", "metric": "bleu", "test": "welch", "verdict": "worse",
             "delta": "-11.0"}  # fmt: skip
    assert C.check_claim(claim, *C.recompute(claim, results)) == []
    with pytest.raises(C.ClaimError, match="not one of edges"):
        C.bucket_results(doc, "16-25")  # a hyphen, not the en dash of the labels
    bad = tmp_path / "claims.yaml"
    bad.write_text("page: README.md\nclaims:\n  - {id: y, table: t.yaml, results: r, a: s, b: l, metric: bleu,"
                   " test: holm, verdict: worse, delta: '-1', by_length: b.json, bucket: '26+'}\n")  # fmt: skip
    with pytest.raises(C.ClaimError, match="with welch or tost"):
        C.load_claims(str(bad))
