"""Is system B better than system A? Over training seeds (Welch t / prediction interval), and over test sentences
(paired bootstrap resampling, Koehn 2004, through sacreBLEU's own implementation).

Pure functions over lists of detokenised sentences and per-seed scores; sacreBLEU does the test-set statistics
(``sacrebleu.significance``), this module only calls it and returns small dictionaries. Also the spread over seeds.
"""

import math
import os
import statistics
from typing import Any, Dict, List, Sequence

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest


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


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (n − 1; 0 for a single value) of a figure over seeds."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def seed_comparison(scores_a: Sequence[float], scores_b: Sequence[float], confidence: float = 0.95) -> Dict[str, Any]:
    """Δ = mean(B) − mean(A) of a figure over training seeds, its ``confidence`` interval, p and a verdict for B.

    Training variance is in the null, not only test-set variance: each seed is one draw of the training run.
    - Both systems with ≥ 2 seeds: Welch's t interval, Δ ± t(df)·√(s_A²/n_A + s_B²/n_B), df by Welch–Satterthwaite.
    - One system with a single seed, the other with n ≥ 2: a prediction interval for one more run of the seeded system,
      Δ ± t(n − 1)·s·√(1 + 1/n); the single run is "within seed noise" unless it falls outside.
    Chosen over a two-level bootstrap (resample seeds, then sentences): with 2–3 seeds a bootstrap over seeds
    draws from 3 values and shrinks their variance by (n − 1)/n with no small-sample correction, so it calls seed
    noise significant; the t quantile (4.30 at 2 degrees of freedom, not 1.96) is what few seeds cost. Test-set noise
    is measured apart (:func:`paired_bootstrap`). The verdict: "better" when the interval lies above 0, "worse" below,
    else "within seed noise". Both single-seeded: ValueError (nothing measures training variance).
    """
    a, b = [float(x) for x in scores_a], [float(x) for x in scores_b]
    if not a or not b:
        raise ValueError("seed_comparison needs at least one score per system")
    if len(a) < 2 and len(b) < 2:
        raise ValueError("one seed per system: training variance cannot be estimated (give one system ≥ 2 seeds)")
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    delta = mb - ma
    if len(a) >= 2 and len(b) >= 2:
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else float(len(a) + len(b) - 2)
        method = "welch"
    else:
        seeded = a if len(a) >= 2 else b
        se = statistics.stdev(seeded) * math.sqrt(1 + 1 / len(seeded))
        df = float(len(seeded) - 1)
        method = "prediction"
    return t_verdict(delta, se, df, method, confidence)


def t_verdict(delta: float, se: float, df: float, method: str, confidence: float = 0.95) -> Dict[str, Any]:
    """Δ ± t(df)·se at ``confidence``, the two-sided p and the verdict: "better" when the interval lies above 0,
    "worse" below, else "within seed noise"."""
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(delta) / se, df)) if se > 0 else (1.0 if delta == 0 else 0.0)
    low, high = delta - half, delta + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "within seed noise"
    return {
        "delta": delta,
        "low": low,
        "high": high,
        "p_value": p,
        "df": df,
        "method": method,
        "confidence": confidence,
        "verdict": verdict,
    }


def paired_seed_comparison(
    scores_a: Sequence[float], scores_b: Sequence[float], confidence: float = 0.95
) -> Dict[str, Any]:
    """Δ = mean(b_i − a_i) over seeds measured both ways (e.g. two methods on the same trained classifiers), t(n − 1).

    Pairs share the training run, so the run's own variance cancels and what remains in the null is how the
    difference varies from run to run: Δ ± t(n − 1)·s_d/√n. Same keys and verdict words as :func:`seed_comparison`
    (both end in :func:`t_verdict`).
    """
    if len(scores_a) != len(scores_b) or len(scores_a) < 2:
        raise ValueError(f"paired_seed_comparison needs ≥ 2 pairs, got {len(scores_a)} and {len(scores_b)} scores")
    d = [float(b) - float(a) for a, b in zip(scores_a, scores_b)]
    se = statistics.stdev(d) / math.sqrt(len(d))
    return t_verdict(statistics.fmean(d), se, float(len(d) - 1), "paired", confidence)


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
    """What scripts/compare.sh prints for seeded systems; last line 'verdict: A better|B better|within seed noise'."""
    lines = []
    for name in ("a", "b"):
        s = result["systems"][name]
        lines.append(
            f"system {name.upper()}: {s['bleu']['n']} seed(s)  BLEU {s['bleu']['mean']:6.2f} ± {s['bleu']['std']:.2f}  "
            f"chrF {s['chrf']['mean']:6.2f} ± {s['chrf']['std']:.2f}"
        )
    for m, c in result["comparison"].items():
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
