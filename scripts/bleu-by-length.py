#!/usr/bin/env python3
"""BLEU and chrF by source length for the rows of one or more tables, from their result files' stored hypotheses:
every seed of every row scored bucket by bucket (fairseq_vanilla/evaluation/length_buckets.py), the mean over seeds,
written as OUT.json and OUT.md, and plotted (mean BLEU, one line a row) as OUT.png.

  python scripts/bleu-by-length.py --data runs/multi30k --rows base,lstm,lstm-noattn,fconv \\
      --results examples/table3/results/multi30k examples/baselines/results/multi30k \\
      --out examples/baselines/bleu-by-length [--min-size 100] [--split valid] [--edges 10,15,20]

Two bucketings: fixed edges (--edges, upper ends: 10,15,20 gives 1–10, 11–15, 16–20, 21+ BPE tokens), and buckets
of at least --min-size sentences (shortest first), since Multi30k's dev set has few long sentences; the plot shows
the second, or the first with --plot edges, with each row's seeds (min to max) around its mean. Source lengths are
counted in the prepared BPE source (DATA/bpe/SPLIT.SRC), the reference is DATA/raw/SPLIT.TGT (--split: the split the
results translated), lower-cased where the results were scored so.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KEYS = ("rows", "buckets", "source")  # what makes a JSON file this script's own output (it may rewrite only that)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="--out folder of the prepare script (bpe/, raw/, bin/pipeline.txt)")
    p.add_argument("--results", nargs="+", required=True, help="result folders (a row found in two: the first wins)")
    p.add_argument("--rows", required=True, help="comma-separated row ids, in the order to show them")
    p.add_argument("--out", required=True, help="OUT.json, OUT.md and OUT.png are written")
    p.add_argument("--force", action="store_true", help="replace OUT.json, .md and .png even if not written here")
    p.add_argument("--min-size", type=int, default=100, help="sentences a bucket holds at least (second bucketing)")
    p.add_argument("--edges", default="10,15,20", help="upper ends of the fixed buckets, comma-separated")
    p.add_argument("--split", default="valid", help="the split the result files' hypotheses translate")
    p.add_argument("--plot", choices=["edges", "min-size"], default="min-size", help="the bucketing plotted")
    a = p.parse_args(argv)

    from fairseq_vanilla.evaluation import length_buckets as L
    from fairseq_vanilla.experiments.table.spec import TableError, load_results
    from fairseq_vanilla.text.io import PipelineError, atomic_write, check_json_output, read_lines, read_settings
    from fairseq_vanilla.text.outputs import claim_output, json_with_keys

    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    try:
        if not rows:
            raise PipelineError(f"--rows: empty ({a.rows!r}): give row ids, e.g. base,A-h1")
        if a.min_size < 1:
            raise PipelineError(f"--min-size: must be at least 1, got {a.min_size}")
        try:
            edges = L.buckets_from_edges([int(e) for e in a.edges.split(",") if e.strip()])
        except ValueError as e:
            raise PipelineError(f"--edges: {e} (give increasing positive integers, e.g. 15,25)") from None
        pipeline = read_settings(os.path.join(a.data, "bin", "pipeline.txt"))
        source = os.path.join(a.data, "bpe", f"{a.split}.{pipeline['src']}")
        reference = os.path.join(a.data, "raw", f"{a.split}.{pipeline['tgt']}")
        lengths = L.token_lengths(read_lines(source, label="--data"))
        refs = read_lines(reference, label="--data")
        found = {}
        for folder in a.results:
            if not os.path.isdir(folder):
                raise PipelineError(f"--results: {folder}: no such folder")
            for key, result in load_results(folder).items():
                found.setdefault(key, result)
        missing = [r for r in rows if not any(key[0] == r for key in found)]
        if missing:
            raise PipelineError(f"--rows: no result file for {', '.join(missing)} in {' '.join(a.results)}")
        claim_output(
            a.out + ".json", is_own=json_with_keys(KEYS), force=a.force, flag="--out", reads=(source, reference)
        )
        if not a.force:  # OUT.md and OUT.png are rewritten only beside its own OUT.json
            check_json_output(a.out + ".json", KEYS, label="--out", companions=(a.out + ".md", a.out + ".png"))
    except (PipelineError, TableError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    bucketings = {
        "edges": edges,
        f"min{a.min_size}": L.buckets_of_min_size(lengths, a.min_size),
    }
    doc = {"source": source, "reference": reference, "buckets": {}, "rows": {}}
    for name, buckets in bucketings.items():
        doc["buckets"][name] = [b.label for b in buckets]
    for row in rows:
        seeds = sorted(seed for rid, seed in found if rid == row)
        per_seed = {}
        for seed in seeds:
            r = found[(row, seed)]
            per_seed[seed] = {
                name: L.scores_by_length(lengths, r["hypotheses"], refs, buckets, lowercase=r["lowercase"])
                for name, buckets in bucketings.items()
            }
        doc["rows"][row] = {
            "variant": found[(row, seeds[0])].get("variant", row),
            "seeds": {str(s): v for s, v in per_seed.items()},
            "mean": {name: L.mean_over_seeds([v[name] for v in per_seed.values()]) for name in bucketings},
        }
    markdown = L.by_length_markdown(doc)
    with atomic_write(a.out + ".json") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with atomic_write(a.out + ".md") as f:
        f.write(markdown)
    shown = "edges" if a.plot == "edges" else f"min{a.min_size}"
    names = {row: f"{row} ({len(v['seeds'])} seed{'s' * (len(v['seeds']) > 1)})" for row, v in doc["rows"].items()}
    plotted = {names[row]: v["mean"][shown] for row, v in doc["rows"].items()}
    spread = {names[row]: [s[shown] for s in v["seeds"].values()] for row, v in doc["rows"].items()}
    title = f"BLEU by source length ({a.split}, mean over seeds; bars: min to max)"
    L.plot_by_length(plotted, a.out + ".png", title=title, seeds=spread)
    print(markdown, end="")
    print(f"wrote {a.out}.json, {a.out}.md and {a.out}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
