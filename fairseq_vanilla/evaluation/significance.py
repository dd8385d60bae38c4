"""Is system B better than system A? Over training seeds (Welch t / prediction interval), and over test sentences
(paired bootstrap resampling, Koehn 2004, through sacreBLEU's own implementation).

Pure functions over lists of detokenised sentences; sacreBLEU does the test-set statistics (``sacrebleu.significance``),
this module only calls it and returns small dictionaries. The tests over seeds are in :mod:`.seed_statistics`.
"""

import math
import os
from typing import Any, Dict, List, Sequence

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from .seed_statistics import (  # noqa: F401  (the seed-level tests, re-exported for the callers of this module)
    equivalence,
    holm,
    mean_std,
    paired_seed_comparison,
    seed_comparison,
    t_verdict,
)


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], lowercase: bool = False) -> Dict[str, float]:
    """Detokenised corpus BLEU and chrF of ``hyps`` against one reference each."""
    _check_lengths(hyps, refs)
    return {
        "bleu": BLEU(lowercase=lowercase).corpus_score(hyps, [refs]).score,
        "chrf": CHRF(lowercase=lowercase).corpus_score(hyps, [refs]).score,
    }


def paired_bootstrap(
    baseline: Sequence[str],
    system: Sequence[str],
    refs: Sequence[str],
    lowercase: bool = False,
    n_samples: int = 1000,
    seed: int = 12345,
) -> Dict[str, Dict[str, float]]:
    """sacreBLEU's ``--paired-bs`` of ``system`` against ``baseline``: per metric (bleu, chrf) the two scores, their
    difference and the p-value (the share of resamples in which the difference is not bigger than observed around
    zero; small = the difference is unlikely to be chance)."""
    _check_lengths(baseline, refs)
    _check_lengths(system, refs)
    previous = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)  # PairedTest reads its RNG seed from here
    try:
        metrics = {"bleu": BLEU(lowercase=lowercase), "chrf": CHRF(lowercase=lowercase)}
        _, scores = PairedTest(
            [("baseline", list(baseline)), ("system", list(system))],
            metrics,
            [list(refs)],
            test_type="bs",
            n_samples=n_samples,
        )()
    finally:
        if previous is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = previous
    out = {}
    for name, column in zip(metrics, [c for c in scores if c != "System"]):  # columns in the metrics' order
        base, sys_ = scores[column]
        delta = sys_.score - base.score
        # sacreBLEU (after multeval) counts only resamples strictly above the observed difference, so a system
        # compared with one of equal score gets p = 1/(n+1); an observed difference of 0 is no evidence: p = 1.
        out[name] = {
            "baseline": base.score,
            "system": sys_.score,
            "delta": delta,
            "p_value": 1.0 if delta == 0.0 else float(sys_.p_value),
        }
    return out


def compare_seeded_systems(
    hyps_a: Sequence[Sequence[str]], hyps_b: Sequence[Sequence[str]], refs: Sequence[str], lowercase: bool = False
) -> Dict[str, Any]:
    """Per seed BLEU and chrF of two systems (one hypothesis list per seed), their mean ± sd, and
    :func:`seed_comparison` of B against A for each metric; the verdict is BLEU's."""
    scores = {name: [corpus_scores(h, refs, lowercase) for h in hyps] for name, hyps in (("a", hyps_a), ("b", hyps_b))}
    out: Dict[str, Any] = {"systems": {}, "comparison": {}}
    for name in ("a", "b"):
        out["systems"][name] = {m: mean_std([s[m] for s in scores[name]]) for m in ("bleu", "chrf")}
    for m in ("bleu", "chrf"):
        out["comparison"][m] = seed_comparison([s[m] for s in scores["a"]], [s[m] for s in scores["b"]])
    out["verdict"] = out["comparison"]["bleu"]["verdict"]
    return out


def format_seeded_comparison(result: Dict[str, Any]) -> List[str]:
    """What scripts/compare.sh prints for seeded systems; last line 'verdict: A better|B better|within seed
    noise|undetermined'."""
    lines = []
    for name in ("a", "b"):
        s = result["systems"][name]
        lines.append(
            f"system {name.upper()}: {s['bleu']['n']} seed(s)  BLEU {s['bleu']['mean']:6.2f} ± {s['bleu']['std']:.2f}  "
            f"chrF {s['chrf']['mean']:6.2f} ± {s['chrf']['std']:.2f}"
        )
    for m, c in result["comparison"].items():
        if c["verdict"] == "undetermined":
            lines.append(f"{m.upper():5} Δ(B−A) {c['delta']:+6.2f}  no interval: {c['reason']}")
            continue
        how = "Welch t over seeds" if c["method"] == "welch" else "prediction interval of the seeded system"
        lines.append(
            f"{m.upper():5} Δ(B−A) {c['delta']:+6.2f}  {c['confidence']:.0%} interval "
            f"[{c['low']:+.2f}, {c['high']:+.2f}]  "
            f"p = {c['p_value']:.4f}  ({how}, df {c['df']:.1f})"
        )
    v = result["verdict"]
    lines.append("verdict: " + {"better": "B better", "worse": "A better"}.get(v, v))
    return lines


def _check_lengths(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references: the files must be parallel")


def format_comparison(result: Dict[str, Dict[str, float]]) -> List[str]:
    """One line per metric: 'BLEU  A 27.31  B 28.02  Δ +0.71  p = 0.0120'."""
    lines = []
    for name, r in result.items():
        star = " (significant at 0.05)" if r["p_value"] < 0.05 else ""
        lines.append(
            f"{name.upper():5} A {r['baseline']:6.2f}  B {r['system']:6.2f}  Δ {r['delta']:+6.2f}  "
            f"p = {r['p_value']:.4f}{star}"
        )
    return lines


def perplexity(nll_base2: float) -> float:
    """Perplexity per token from fairseq's ``nll_loss`` (base 2): 2^nll."""
    return math.pow(2.0, nll_base2)


def main(argv=None) -> int:
    """``python -m fairseq_vanilla.evaluation.significance HYP_A[,A2,…] HYP_B[,B2,…] REF [--lowercase]``
    (scripts/compare.sh): one file per system is the paired bootstrap; comma-separated seeds, the seed-aware test."""
    import argparse

    from ..text.io import PipelineError, read_lines

    p = argparse.ArgumentParser(description="is B better than A? over seeds (comma-separated files) and sentences")
    p.add_argument("hyp_a", help="detokenised hypotheses of system A (the baseline): a file per seed, A1,A2,…")
    p.add_argument("hyp_b", help="detokenised hypotheses of system B, parallel to A: a file per seed, B1,B2,…")
    p.add_argument("ref", help="the reference, parallel to both")
    p.add_argument("--lowercase", action="store_true", help="case-insensitive BLEU and chrF")
    p.add_argument("--samples", type=int, default=1000, help="bootstrap resamples (default 1000, sacreBLEU's)")
    args = p.parse_args(argv)
    if args.samples < 1:
        raise SystemExit(f"error: --samples: must be at least 1, got {args.samples}")
    files = {name: [f for f in value.split(",") if f] for name, value in (("hyp_a", args.hyp_a), ("hyp_b", args.hyp_b))}
    for name, paths in files.items():
        if not paths:
            raise SystemExit(f"error: {name.upper()}: no hypothesis file given")
    try:
        ref = read_lines(args.ref)
        hyps = {name: [read_lines(path) for path in paths] for name, paths in files.items()}
    except PipelineError as e:
        raise SystemExit(f"error: {e}") from None
    for name in files:
        for path, lines in zip(files[name], hyps[name]):
            if len(lines) != len(ref):
                raise SystemExit(f"error: {path}: {len(lines)} lines, but the reference {args.ref} has {len(ref)}")
    a, b = hyps["hyp_a"], hyps["hyp_b"]
    if len(a) == 1 and len(b) == 1:
        lines = format_comparison(paired_bootstrap(a[0], b[0], ref, args.lowercase, args.samples))
        lines.append("(one seed per system: this p measures test-set noise only; give seeds as A1,A2,A3 B1,B2,B3)")
    else:
        lines = format_seeded_comparison(compare_seeded_systems(a, b, ref, args.lowercase))
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
