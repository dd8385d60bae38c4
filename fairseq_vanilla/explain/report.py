"""The erasure measurement as tables (Markdown, mean ± sd over classifiers) and a plot (drop against k)."""

from typing import Dict, List


def _cell(stat: Dict[str, float], digits: int = 3) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _k_header(first: str, ks: List[str]) -> List[str]:
    """A table's two header lines: ``first`` over the side column, then k (% of the review's tokens erased)."""
    return [
        "| " + first + " | " + " | ".join(f"k = {float(k) * 100:g} %" for k in ks) + " |",
        "| --- |" + " ---: |" * len(ks),
    ]


def erasure_table(summary: Dict[str, object], figure: str) -> str:
    """Methods down the side, k (% of the review's tokens erased) along the top, ``figure`` mean ± sd in the cells."""
    erasure = summary["erasure"]
    ks = list(next(iter(erasure.values())))
    lines = _k_header("method", ks)
    for method, by_k in erasure.items():
        lines.append(f"| {method} | " + " | ".join(_cell(by_k[k][figure]) for k in ks) + " |")
    return "\n".join(lines)


def correlation_table(summary: Dict[str, object]) -> str:
    """Mean per-review Spearman's ρ and Kendall's τ of every pair of methods, mean ± sd over classifiers."""
    lines = ["| methods | Spearman ρ | Kendall τ |", "| --- | ---: | ---: |"]
    for pair, kinds in summary["correlation"].items():
        lines.append(f"| {pair.replace('~', ' ~ ')} | {_cell(kinds['spearman'])} | {_cell(kinds['kendall'])} |")
    return "\n".join(lines)


def paired_table(summary: Dict[str, object]) -> str:
    """Δ of the probability drop between two methods, paired over the same classifiers, with its 95 % interval."""
    paired = summary["paired"]
    ks = list(next(iter(paired.values())))
    lines = _k_header("B − A", ks)
    for pair, by_k in paired.items():
        b, a = pair.split("~")
        cells = [_paired_cell(by_k[k]) for k in ks]
        lines.append(f"| {b} − {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired_cell(c: Dict[str, object]) -> str:
    """Δ [low, high], or Δ (undetermined) where the paired differences have no spread."""
    if c["low"] is None:
        return f"{c['delta']:+.3f} (undetermined: no spread)"
    return f"{c['delta']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"


def report(summary: Dict[str, object], n_reviews: int, n_classifiers: int) -> str:
    """The three tables with a heading each, as Markdown."""
    acc = summary["accuracy"]
    parts: List[str] = [
        f"{n_reviews} test reviews, {n_classifiers} classifier(s); accuracy on the full reviews {_cell(acc)}.",
        "",
        "Drop in the probability of the predicted class when the top k % tokens are deleted (higher = more faithful):",
        "",
        erasure_table(summary, "probability_drop"),
        "",
        "Drop in accuracy:",
        "",
        erasure_table(summary, "accuracy_drop"),
        "",
        "Rank correlation between the methods' token scores (per review, averaged):",
        "",
        correlation_table(summary),
    ]
    if summary.get("paired"):
        parts += [
            "",
            "Difference in the probability drop between two methods, paired over the same classifiers (mean of B − A,",
            "95 % t interval with n − 1 degrees of freedom): an interval that excludes 0 is beyond classifier noise.",
            "",
            paired_table(summary),
        ]
    return "\n".join(parts) + "\n"


def plot(summary: Dict[str, object], path: str) -> None:
    """Two panels, probability drop and accuracy drop against k, one line per method (error bars: sd); PNG."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq sets the root logger to DEBUG
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, figure, title in zip(
        axes, ("probability_drop", "accuracy_drop"), ("drop in predicted-class probability", "drop in accuracy")
    ):
        for method, by_k in summary["erasure"].items():
            ks = list(by_k)
            x = [float(k) * 100 for k in ks]
            y = [by_k[k][figure]["mean"] for k in ks]
            sd = [by_k[k][figure]["std"] for k in ks]
            style = dict(linestyle="--", color="grey") if method == "random" else {}
            ax.errorbar(x, y, yerr=sd, marker="o", capsize=3, label=method, **style)
        ax.set_xticks([float(k) * 100 for k in ks])
        ax.set_xlabel("tokens erased, % of the review (top-ranked first)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
