"""Is B better than, worse than or equal to A over training seeds? Welch's t, the prediction interval of a one-seed
run, two one-sided tests (TOST) for "equal", and Holm's step-down adjustment for a table's family of comparisons.

Pure functions over per-seed scores (the standard library and scipy's t distribution only, so that
``scripts/train.sh`` can read them without the package's fairseq registration). Every comparison returns a small
dictionary with a ``verdict``; no verdict is given where nothing measures training variance.
"""

import math
import statistics
from typing import Any, Dict, List, Optional, Sequence

# Equivalence margins, stated once per metric: "equal" means the (1 − 2α) interval of Δ lies inside ±margin.
# BLEU and chrF ±1.0: the smallest difference this project ever reports as a finding; a third of the paper's Table 3
# spread (23.7–26.4) and about the sd of one Table 3 base seed here (0.86), below which human judges do not reliably
# rank systems (Mathur et al. 2020 find ≤ 1–2 BLEU unreliable). Dev PPL ±0.2: the paper's Table 3 reports PPL to two
# decimals and calls rows 0.1 apart alike (A: 4.91–5.01); 0.2 is the base's PPL sd here (≈ 0.1) doubled. Accuracy
# ±0.01 (one point): three times the IMDB rows' seed sd (0.003).
MARGINS = {"bleu": 1.0, "chrf": 1.0, "ppl": 0.2, "accuracy": 0.01}

# A side whose seeds differ by less than this (relative to its mean) has no spread: identical scores are the same
# run given twice, or a metric that does not vary, and Welch's t would divide by ~0.
SPREAD_FLOOR = 1e-9


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (n − 1; 0 for a single value) of a figure over seeds."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _no_spread(values: List[float]) -> bool:
    return len(values) >= 2 and statistics.stdev(values) <= SPREAD_FLOOR * max(1.0, abs(statistics.fmean(values)))


def undetermined(delta: float, method: str, confidence: float, reason: str) -> Dict[str, Any]:
    """The result where the data cannot give a direction: Δ, and no interval, p or direction."""
    return {
        "delta": delta,
        "low": None,
        "high": None,
        "p_value": None,
        "df": None,
        "method": method,
        "confidence": confidence,
        "verdict": "undetermined",
        "reason": reason,
    }


def _difference(a: List[float], b: List[float]) -> Dict[str, Any]:
    """Δ = mean(b) − mean(a), its standard error, degrees of freedom and method; or ``reason`` when no spread."""
    if not a or not b:
        raise ValueError("a seed comparison needs at least one score per system")
    if len(a) < 2 and len(b) < 2:
        raise ValueError("one seed per system: training variance cannot be estimated (give one system ≥ 2 seeds)")
    delta = statistics.fmean(b) - statistics.fmean(a)
    both = len(a) >= 2 and len(b) >= 2
    method = "welch" if both else "prediction"
    flat = [f"the {len(v)} seeds of {name}" for name, v in (("A", a), ("B", b)) if _no_spread(v)]
    if flat:  # identical scores: one run given as several seeds, or a figure that does not vary
        return {"delta": delta, "method": method, "reason": f"no spread over {' and '.join(flat)}"}
    if both:
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        return {"delta": delta, "method": method, "se": math.sqrt(va + vb), "df": df}
    seeded = a if len(a) >= 2 else b
    return {
        "delta": delta,
        "method": method,
        "se": statistics.stdev(seeded) * math.sqrt(1 + 1 / len(seeded)),
        "df": float(len(seeded) - 1),
    }


def seed_comparison(scores_a: Sequence[float], scores_b: Sequence[float], confidence: float = 0.95) -> Dict[str, Any]:
    """Δ = mean(B) − mean(A) of a figure over training seeds, its ``confidence`` interval, p and a verdict for B.

    Training variance is in the null, not only test-set variance: each seed is one draw of the training run.
    - Both systems with ≥ 2 seeds: Welch's t interval, Δ ± t(df)·√(s_A²/n_A + s_B²/n_B), df by Welch–Satterthwaite.
    - One system with a single seed, the other with n ≥ 2: a prediction interval for one more run of the seeded system,
      Δ ± t(n − 1)·s·√(1 + 1/n). It assumes the single run varies as the seeded one does (``method: prediction``);
      a row twice as noisy gets a false verdict far more often than 5 %.
    Chosen over a two-level bootstrap (resample seeds, then sentences): with 2–3 seeds a bootstrap over seeds
    draws from 3 values and shrinks their variance by (n − 1)/n with no small-sample correction, so it calls seed
    noise significant; the t quantile (4.30 at 2 degrees of freedom, not 1.96) is what few seeds cost. The verdict:
    "better" when the interval lies above 0, "worse" below, else "within seed noise"; "undetermined" (with a
    ``reason``) when a side's seeds have no spread. Both single-seeded: ValueError.
    """
    d = _difference([float(x) for x in scores_a], [float(x) for x in scores_b])
    if "reason" in d:
        return undetermined(d["delta"], d["method"], confidence, d["reason"])
    return t_verdict(d["delta"], d["se"], d["df"], d["method"], confidence)


def t_verdict(delta: float, se: float, df: float, method: str, confidence: float = 0.95) -> Dict[str, Any]:
    """Δ ± t(df)·se at ``confidence``, the two-sided p and the verdict: "better" when the interval lies above 0,
    "worse" below, else "within seed noise"; "undetermined" when se is 0 (nothing measured the spread)."""
    from scipy import stats

    if not se > 0:
        return undetermined(delta, method, confidence, "zero standard error")
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(delta) / se, df))
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


def equivalence(scores_a: Sequence[float], scores_b: Sequence[float], margin: float, alpha: float = 0.05):
    """Two one-sided tests (Schuirmann 1987) of |mean(B) − mean(A)| < ``margin`` over seeds: "equal" when both
    H₀: Δ ≤ −margin and H₀: Δ ≥ +margin are rejected at ``alpha``, i.e. the (1 − 2α) interval of Δ (Welch, or the
    prediction interval of a one-seed system, as :func:`seed_comparison`) lies inside ±margin; else "not shown
    equal" — which is no evidence of a difference. p is the larger of the two one-sided p's."""
    from scipy import stats

    if not margin > 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin}")
    d = _difference([float(x) for x in scores_a], [float(x) for x in scores_b])
    confidence = 1 - 2 * alpha
    if "reason" in d:
        return undetermined(d["delta"], d["method"], confidence, d["reason"]) | {"margin": margin}
    delta, se, df = d["delta"], d["se"], d["df"]
    half = float(stats.t.ppf(1 - alpha, df)) * se
    p = max(float(stats.t.sf((delta + margin) / se, df)), float(stats.t.cdf((delta - margin) / se, df)))
    return {
        "delta": delta,
        "low": delta - half,
        "high": delta + half,
        "p_value": p,
        "df": df,
        "method": d["method"],
        "confidence": confidence,
        "margin": margin,
        "verdict": "equal" if p < alpha else "not shown equal",
    }


def holm(p_values: Sequence[Optional[float]]) -> List[Optional[float]]:
    """Holm's step-down adjusted p-values (Holm 1979) of a family, in the given order; None entries (no test) are
    kept and not counted. With the m p's sorted ascending, p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎); rejecting
    p̃ < α keeps the chance of any false verdict in the family at most α."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    out: List[Optional[float]] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def holm_verdict(verdict: Optional[str], adjusted_p: Optional[float], alpha: float = 0.05) -> Optional[str]:
    """A comparison's ``verdict`` after Holm's adjustment: its direction where the adjusted p is below ``alpha``
    (adjusted p ≥ raw p, so only a "better" or "worse" can keep its direction), else "within seed noise"; a comparison
    outside the family (no p) keeps only an "undetermined"."""
    if adjusted_p is None:
        return verdict if verdict == "undetermined" else None
    return verdict if adjusted_p < alpha else "within seed noise"


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
