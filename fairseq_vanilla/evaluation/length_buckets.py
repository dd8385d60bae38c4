"""Translation quality by source length: corpus BLEU and chrF (sacreBLEU) of the sentences in each length bucket.

A bucket is a small corpus: its BLEU pools the n-gram counts of its sentences (it is not an average of sentence
BLEUs), as in the length analyses of Bahdanau et al. (2015) and Luong et al. (2015) that motivated attention. Buckets
are fixed edges (default 1–10, 11–15, 16–20, 21+ source tokens), or chosen from the data so that each holds at least
``min_size`` sentences. Pure functions (no fairseq); :func:`plot_by_length` draws several systems side by side.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from sacrebleu.metrics import BLEU, CHRF

DEFAULT_EDGES = (10, 15, 20)  # upper ends: 1–10, 11–15, 16–20, 21+


@dataclass(frozen=True)
class Bucket:
    """Source lengths ``low`` … ``high`` (inclusive); ``high`` None = no upper end."""

    low: int
    high: Optional[int] = None

    @property
    def label(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"

    def holds(self, length: int) -> bool:
        return self.low <= length and (self.high is None or length <= self.high)


def buckets_from_edges(edges: Sequence[int] = DEFAULT_EDGES) -> List[Bucket]:
    """Upper ends ``(10, 15, 20)`` → buckets 1–10, 11–15, 16–20, 21+."""
    if any(b <= a for a, b in zip(edges, edges[1:])) or (edges and edges[0] < 1):
        raise ValueError(f"bucket edges must be positive and increasing, got {list(edges)}")
    lows = [1] + [e + 1 for e in edges]
    return [Bucket(low, high) for low, high in zip(lows, list(edges) + [None])]


def buckets_of_min_size(lengths: Sequence[int], min_size: int = 100) -> List[Bucket]:
    """Buckets, shortest first, each closed at the first length where it holds ≥ ``min_size`` sentences; a remainder
    smaller than that joins the last bucket, which has no upper end. One bucket if all are fewer than ``min_size``."""
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1, got {min_size}")
    counts = Counter(lengths)
    edges, held = [], 0
    for length in sorted(counts):
        held += counts[length]
        if held >= min_size:
            edges.append(length)
            held = 0
    if edges and held < min_size:  # the sentences after the last edge are too few: merge them into its bucket
        edges.pop()
    return buckets_from_edges(edges) if edges else [Bucket(1, None)]


def token_lengths(lines: Sequence[str]) -> List[int]:
    """Source lengths in tokens (whitespace-split: BPE units for a BPE'd source)."""
    return [len(line.split()) for line in lines]


def scores_by_length(
    src_lengths: Sequence[int],
    hyps: Sequence[str],
    refs: Sequence[str],
    buckets: Optional[Sequence[Bucket]] = None,
    min_size: Optional[int] = None,
    lowercase: bool = False,
) -> List[Dict]:
    """Per bucket (``buckets``; else :func:`buckets_of_min_size` with ``min_size``; else the default edges): its
    label, low, high, the number of sentences n, and corpus BLEU and chrF of those sentences (None where n = 0)."""
    if not len(src_lengths) == len(hyps) == len(refs):
        raise ValueError(f"{len(src_lengths)} source lengths, {len(hyps)} hypotheses, {len(refs)} references")
    if buckets is None:
        buckets = buckets_of_min_size(src_lengths, min_size) if min_size else buckets_from_edges()
    rows = []
    for bucket in buckets:
        members = [i for i, n in enumerate(src_lengths) if bucket.holds(n)]
        h, r = [hyps[i] for i in members], [refs[i] for i in members]
        bleu = BLEU(lowercase=lowercase).corpus_score(h, [r]) if members else None
        rows.append(
            {
                "bucket": bucket.label,
                "low": bucket.low,
                "high": bucket.high,
                "n": len(members),
                "bleu": bleu.score if bleu else None,
                "chrf": CHRF(lowercase=lowercase).corpus_score(h, [r]).score if members else None,
                # hypothesis / reference length in BLEU's tokens: below 1, the brevity penalty exp(1 − 1/ratio)
                "length_ratio": bleu.sys_len / bleu.ref_len if bleu and bleu.ref_len else None,
            }
        )
    unplaced = len(src_lengths) - sum(row["n"] for row in rows)
    if unplaced:
        raise ValueError(f"{unplaced} sentence(s) fall in no bucket (lengths below {buckets[0].low}?)")
    return rows


def mean_over_seeds(runs: Sequence[List[Dict]]) -> List[Dict]:
    """The bucket-wise mean BLEU, chrF and length ratio of several seeds' :func:`scores_by_length` (the same
    buckets each)."""
    labels = [row["bucket"] for row in runs[0]]
    if any([row["bucket"] for row in rows] != labels for rows in runs):
        raise ValueError("the seeds were scored on different buckets")
    out = []
    for i, first in enumerate(runs[0]):
        mean = {}
        for metric in ("bleu", "chrf", "length_ratio"):
            values = [rows[i][metric] for rows in runs]
            mean[metric] = None if None in values else sum(values) / len(values)
        out.append({**{k: first[k] for k in ("bucket", "low", "high", "n")}, **mean})
    return out


def by_length_markdown(doc: Dict) -> str:
    """scripts/bleu-by-length.py's tables: per bucketing, one line a row: BLEU (chrF) per bucket, mean over seeds,
    each seed's BLEU after it where there are several."""
    out = []
    for name, labels in doc["buckets"].items():
        first = next(iter(doc["rows"].values()))["mean"][name]
        out.append(
            f"BLEU (chrF) by source length in BPE tokens, buckets `{name}`; mean over seeds, then each seed's BLEU"
        )
        out.append("")
        out.append("| row | seeds | " + " | ".join(f"{b['bucket']} (n={b['n']})" for b in first) + " |")
        out.append("| --- | ---: |" + " ---: |" * len(labels))
        for row, v in doc["rows"].items():
            cells = []
            for i, b in enumerate(v["mean"][name]):
                if b["n"] == 0:  # an empty bucket has no score
                    cells.append("—")
                    continue
                each = [s[name][i]["bleu"] for s in v["seeds"].values()]
                spread = f" [{' / '.join(f'{x:.1f}' for x in each)}]" if len(each) > 1 else ""
                cells.append(f"{b['bleu']:.2f} ({b['chrf']:.1f}){spread}")
            out.append(f"| {row} | {len(v['seeds'])} | " + " | ".join(cells) + " |")
        out.append("")
        out.append(f"Hypothesis / reference length (BLEU's brevity penalty acts below 1), buckets `{name}`")
        out.append("")
        out.append("| row | " + " | ".join(b["bucket"] for b in first) + " |")
        out.append("| --- |" + " ---: |" * len(labels))
        for row, v in doc["rows"].items():
            ratios = [b.get("length_ratio") for b in v["mean"][name]]
            out.append(f"| {row} | " + " | ".join("—" if x is None else f"{x:.3f}" for x in ratios) + " |")
        out.append("")
    return "\n".join(out)


def plot_by_length(
    systems: Dict[str, List[Dict]],
    path: str,
    metric: str = "bleu",
    title: str = "",
    seeds: Optional[Dict[str, Sequence[List[Dict]]]] = None,
) -> None:
    """One line per system (``{name: scores_by_length(...)}``, the same buckets each) of ``metric`` against the
    source-length bucket, labelled with each bucket's n; written to ``path`` (PNG, PDF, … by its suffix).
    ``seeds`` (name → each seed's rows): the seeds' spread, min to max, drawn as a bar around the line's point and
    each seed as a dot."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # under fairseq's logging setup it prints its fonts
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["bucket"] for row in next(iter(systems.values()))]
    for name, rows in [*systems.items(), *((n, r) for n, runs in (seeds or {}).items() for r in runs)]:
        if [row["bucket"] for row in rows] != labels:
            raise ValueError(f"system {name!r} has buckets {[row['bucket'] for row in rows]}, not {labels}")
    counts = [row["n"] for row in next(iter(systems.values()))]
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, rows) in enumerate(systems.items()):
        x = [i + 0.06 * (k - (len(systems) - 1) / 2) for i in range(len(labels))]  # systems side by side
        line = ax.plot(x, [row[metric] for row in rows], marker="o", label=name)[0]
        runs = (seeds or {}).get(name) or []
        for i, xi in enumerate(x if len(runs) > 1 else []):  # one seed has no spread to draw
            values = [r[i][metric] for r in runs if r[i][metric] is not None]
            if values:
                ax.vlines(xi, min(values), max(values), color=line.get_color(), alpha=0.6)
                ax.scatter([xi] * len(values), values, s=8, color=line.get_color(), alpha=0.6)
    ax.set_xticks(range(len(labels)), [f"{label}\n(n={n})" for label, n in zip(labels, counts)])
    ax.set_xlabel("source length (tokens)")
    ax.set_ylabel({"bleu": "BLEU", "chrf": "chrF"}.get(metric, metric))
    ax.set_title(title or f"{metric.upper()} by source length")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
