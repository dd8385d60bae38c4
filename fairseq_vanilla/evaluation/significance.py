"""Is system B better than system A? Paired bootstrap resampling (Koehn 2004) through sacreBLEU's own implementation.

Pure functions over lists of detokenised sentences; sacreBLEU does the statistics (``sacrebleu.significance``),
this module only calls it and returns small dictionaries. Also the spread of a figure over seeds.
"""

import math
import os
import statistics
from typing import Dict, List, Sequence

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
    """``python -m fairseq_vanilla.evaluation.significance HYP_A HYP_B REF [--lowercase]`` (scripts/compare.sh)."""
    import argparse

    from ..text.io import PipelineError, read_lines

    p = argparse.ArgumentParser(description="paired bootstrap resampling (sacreBLEU's --paired-bs) of B against A")
    p.add_argument("hyp_a", help="detokenised hypotheses of system A (the baseline), one per line")
    p.add_argument("hyp_b", help="detokenised hypotheses of system B, parallel to A")
    p.add_argument("ref", help="the reference, parallel to both")
    p.add_argument("--lowercase", action="store_true", help="case-insensitive BLEU and chrF")
    p.add_argument("--samples", type=int, default=1000, help="bootstrap resamples (default 1000, sacreBLEU's)")
    args = p.parse_args(argv)
    try:
        a, b, ref = (read_lines(path) for path in (args.hyp_a, args.hyp_b, args.ref))
    except PipelineError as e:
        raise SystemExit(f"error: {e}") from None
    for path, lines in ((args.hyp_a, a), (args.hyp_b, b)):
        if len(lines) != len(ref):
            raise SystemExit(f"error: {path}: {len(lines)} lines, but the reference {args.ref} has {len(ref)}")
    for line in format_comparison(paired_bootstrap(a, b, ref, args.lowercase, args.samples)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
