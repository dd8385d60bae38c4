"""Checked claims: each comparative sentence of an answer page as data (two rows, a metric, a test, the verdict and Δ
the text states), recomputed from the committed result files.

A claims file (``examples/<page>/claims.yaml``) names its page and lists claims::

    page: README.md                      # the page whose sentences these are (relative to the claims file)
    claims:
      - id: h1-bleu                      # the sentence links it: "(claim [h1-bleu](claims.yaml))"
        table: table3.yaml               # the table of variations (relative to the claims file)
        results: results/multi30k        # its result files
        a: base                          # row ids; Δ = mean(b) − mean(a) over seeds
        b: A-h1
        metric: bleu                     # bleu, chrf, ppl (lower is better), accuracy_test, …
        test: welch                      # welch (95 %), tost (equal within MARGINS[metric]), holm (the table's column)
        verdict: better                  # what the text says: better / worse / within seed noise / equal / …
        delta: "+2.95"                   # Δ as printed (its decimals are the precision checked)

For a metric where lower is better (``ppl``), "better" means lower. A claim about one source-length bucket adds
``by_length: by-length.json`` (scripts/bleu-by-length.py's output for the same results, relative to the claims file)
and ``bucket: "16–25"`` (of its fixed ``edges``); its metric (bleu, chrf) is then the bucket's, seed by seed
(:func:`bucket_results`). :func:`check_claim` is pure: results in, a list of disagreements out (empty when the claim
holds).
"""

import os
import re
from typing import Any, Dict, List, Sequence, Tuple

from .seed_statistics import MARGINS, equivalence, seed_comparison

LOWER_IS_BETTER = {"ppl"}
TESTS = ("welch", "tost", "holm")
CLAIM_REF = re.compile(r"\[([\w.+-]+)\]\([^)\s]*claims\.yaml[^)\s]*\)")  # a link to a claims file: [ID](…claims.yaml)


class ClaimError(ValueError):
    """A claims file that cannot be read as claims (names the file and the claim)."""


def load_claims(path: str) -> Dict[str, Any]:
    """A claims file, checked for shape; ``table``, ``results`` and ``page`` made absolute."""
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list) or "page" not in data:
        raise ClaimError(f"{path}: a claims file is a mapping with `page` and a list `claims`")
    here = os.path.dirname(os.path.abspath(path))
    seen = set()
    for claim in data["claims"]:
        missing = [
            k for k in ("id", "table", "results", "a", "b", "metric", "test", "verdict", "delta") if k not in claim
        ]
        if missing:
            raise ClaimError(f"{path}: claim {claim.get('id', '?')}: missing {', '.join(missing)}")
        if claim["test"] not in TESTS:
            raise ClaimError(f"{path}: claim {claim['id']}: test must be one of {', '.join(TESTS)}")
        if claim["id"] in seen:
            raise ClaimError(f"{path}: claim {claim['id']} appears twice")
        seen.add(claim["id"])
        claim["table"], claim["results"] = (os.path.join(here, claim[k]) for k in ("table", "results"))
        if ("by_length" in claim) != ("bucket" in claim) or ("by_length" in claim and claim["test"] == "holm"):
            raise ClaimError(f"{path}: claim {claim['id']}: by_length and bucket go together, with welch or tost")
        if "by_length" in claim:
            claim["by_length"] = os.path.join(here, claim["by_length"])
    data["page"] = os.path.join(here, data["page"])
    return data


def bucket_results(doc: Dict[str, Any], bucket: str, bucketing: str = "edges") -> Dict[Tuple[str, int], Dict]:
    """(row, seed) → that seed's scores (bleu, chrf, length_ratio) in one bucket of a bleu-by-length document."""
    labels = doc["buckets"][bucketing]
    if bucket not in labels:
        raise ClaimError(f"bucket {bucket!r} is not one of {bucketing}'s: {', '.join(labels)}")
    i = labels.index(bucket)
    return {
        (row, int(seed)): scores[bucketing][i] for row, v in doc["rows"].items() for seed, scores in v["seeds"].items()
    }


def seed_scores(results: Dict[Tuple[str, int], Dict[str, Any]], row_id: str, metric: str) -> List[float]:
    """A row's ``metric`` by seed, sign-flipped where lower is better (so that "better" is always up)."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return [sign * float(r[metric]) for (rid, _), r in sorted(results.items()) if rid == row_id]


def recompute(claim: Dict[str, Any], results: Dict[Tuple[str, int], Dict[str, Any]], holm_verdicts=None):
    """The (verdict, Δ) a claim's test gives on ``results``; Δ in the metric's own direction (B − A).
    ``holm_verdicts``: row id → the table's Holm verdict, for ``test: holm``."""
    a, b = (seed_scores(results, claim[k], claim["metric"]) for k in ("a", "b"))
    if not a or not b:
        missing = claim["a"] if not a else claim["b"]
        raise ClaimError(f"claim {claim['id']}: no result of row {missing} in {claim['results']}")
    sign = -1.0 if claim["metric"] in LOWER_IS_BETTER else 1.0
    if claim["test"] == "tost":
        r = equivalence(a, b, MARGINS[claim["metric"].replace("_test", "").replace("_dev", "")])
    else:
        r = seed_comparison(a, b)
    verdict = r["verdict"]
    if claim["test"] == "holm":
        verdict = (holm_verdicts or {}).get(claim["b"])
    return verdict, sign * r["delta"]


def check_claim(claim: Dict[str, Any], verdict: str, delta: float) -> List[str]:
    """What disagrees between a claim and its recomputed (verdict, Δ): empty when the claim holds. Δ is compared at
    the claim's printed precision (``"+2.95"`` → two decimals)."""
    problems = []
    if verdict != claim["verdict"]:
        problems.append(f"verdict {verdict!r}, the claim says {claim['verdict']!r}")
    stated = str(claim["delta"]).replace("−", "-")
    decimals = len(stated.split(".")[1]) if "." in stated else 0
    if f"{delta:+.{decimals}f}" != (stated if stated[0] in "+-" else f"+{stated}"):
        problems.append(f"Δ {delta:+.{decimals}f}, the claim says {claim['delta']}")
    return [f"claim {claim['id']} ({claim['b']} against {claim['a']}, {claim['metric']}): {p}" for p in problems]


def page_references(text: str) -> List[str]:
    """The claim ids a page's sentences name (links to a claims file, ``claim [ID](claims.yaml)``), in order."""
    return [name for name in CLAIM_REF.findall(text) if not name.endswith(".yaml")]  # not a link to the file itself


def unreferenced_and_unknown(ids: Sequence[str], text: str) -> Tuple[List[str], List[str]]:
    """Claims no sentence names, and names no claim answers."""
    named = set(page_references(text))
    return sorted(set(ids) - named), sorted(named - set(ids))
