"""Random vs grid search, and one batch vs accumulated batches: result files from sweep folders, tables from them.

    python -m fairseq_vanilla.experiments.sweeps.tables record --random R1 R2 R3 --grid G1 G2 G3 \
        --accumulation-a A --accumulation-b B --out examples/hydra/results
    python -m fairseq_vanilla.experiments.sweeps.tables table examples/hydra/results    # markdown, from the JSON only

A sweep folder is read through :func:`.report.load_study` (its ``optuna.db``, or a grid's job folders).
"""

import argparse
import json
from pathlib import Path

from ...evaluation.significance import mean_std
from ...text.io import PipelineError, atomic_write, check_json_output
from ..table import stages
from . import report


def sweep_command(folder) -> str:
    """The command line that ran the sweep, from the ``multirun.yaml`` Hydra's sweepers write (paths as given)."""
    from omegaconf import OmegaConf

    config = OmegaConf.load(Path(folder) / "multirun.yaml")
    line = " ".join(
        [
            "fairseq-hydra-train -m --config-dir examples/hydra --config-name",
            config.hydra.job.config_name,
            *(
                f"'{o}'" if "(" in o or "[" in o else o
                for o in [
                    *(o for o in config.hydra.overrides.hydra if not o.startswith("hydra.mode=")),
                    *config.hydra.overrides.task,
                ]
            ),
        ]
    )
    return line.replace(str(Path.cwd()), "$PWD")


def trial_values(folder) -> list:
    """``[{"params", "objective", "updates"}]`` of the sweep's finished trials, in trial order."""
    study = report.load_study(folder)
    return [
        {"params": t.params, "objective": t.value, "updates": t.user_attrs.get("updates")}
        for t in study.trials
        if t.state.name == "COMPLETE"
    ]


def versions() -> dict:
    """The versions every experiment records (:func:`..table.stages.versions`), and Optuna's."""
    import optuna

    return {**stages.versions(), "optuna": optuna.__version__}


def record_search(random_dirs, grid_dirs) -> dict:
    """Per method and search seed: every trial, the best validation loss, and its mean/std over the seeds."""
    record = {
        "experiment": "random vs grid search at equal budget",
        "metric": "best validation loss (base 2)",
        "versions": versions(),
        "methods": {},
    }
    for method, dirs in (("random", random_dirs), ("grid", grid_dirs)):
        runs = [{"folder": Path(d).name, "command": sweep_command(d), "trials": trial_values(d)} for d in dirs]
        for run in runs:
            run["best"] = min(t["objective"] for t in run["trials"])
        record["methods"][method] = {"runs": runs, "best": mean_std([r["best"] for r in runs])}
    return record


def record_accumulation(dir_a, dir_b) -> dict:
    """Valid loss per seed of two settings at equal updates, and a paired t-test over the seeds."""
    from scipy.stats import ttest_rel

    settings = {}
    for folder in (dir_a, dir_b):
        trials = trial_values(folder)
        settings[Path(folder).name] = {
            "command": sweep_command(folder),
            "by_seed": {str(t["params"]["common.seed"]): t["objective"] for t in trials},
        }
    (name_a, a), (name_b, b) = settings.items()
    seeds = sorted(set(a["by_seed"]) & set(b["by_seed"]), key=int)
    x, y = [a["by_seed"][s] for s in seeds], [b["by_seed"][s] for s in seeds]
    test = ttest_rel(x, y)
    return {
        "experiment": "one batch vs accumulated batches at equal tokens per update and equal updates",
        "metric": "best validation loss (base 2)",
        "versions": versions(),
        "settings": settings,
        "seeds": seeds,
        "mean_std": {name_a: mean_std(x), name_b: mean_std(y)},
        "paired_t": {
            "mean_difference": sum(p - q for p, q in zip(x, y)) / len(seeds),
            "t": float(test.statistic),
            "p": float(test.pvalue),
            "n": len(seeds),
        },
    }


def search_table(record) -> str:
    seeds = len(next(iter(record["methods"].values()))["runs"])
    lines = [
        f"| search | {' | '.join(f'seed {n + 1}' for n in range(seeds))} | mean ± std | distinct lr values |",
        "| --- |" + " --- |" * (seeds + 2),
    ]
    for method, result in record["methods"].items():
        bests = " | ".join(f"{r['best']:.3f}" for r in result["runs"])
        distinct = len({t["params"].get("optimization.lr") for t in result["runs"][0]["trials"]})
        lines.append(
            f"| {method} | {bests} | {result['best']['mean']:.3f} ± {result['best']['std']:.3f} | {distinct} |"
        )
    return "\n".join(lines)


def accumulation_table(record) -> str:
    names = list(record["settings"])
    lines = [
        f"| setting | {' | '.join('seed ' + s for s in record['seeds'])} | mean ± std |",
        "| --- |" + " --- |" * (len(record["seeds"]) + 1),
    ]
    for name in names:
        by_seed = record["settings"][name]["by_seed"]
        stats = record["mean_std"][name]
        lines.append(
            f"| {name} | {' | '.join(f'{by_seed[s]:.3f}' for s in record['seeds'])} | "
            f"{stats['mean']:.3f} ± {stats['std']:.3f} |"
        )
    test = record["paired_t"]
    lines.append(
        f"\nPaired t-test over seeds ({names[0]} − {names[1]}): mean difference "
        f"{test['mean_difference']:+.3f}, t = {test['t']:.2f}, p = {test['p']:.3f} (n = {test['n']})."
    )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="write the result JSON files from sweep folders")
    rec.add_argument("--random", nargs="+", required=True)
    rec.add_argument("--grid", nargs="+", required=True)
    rec.add_argument("--accumulation-a")
    rec.add_argument("--accumulation-b")
    rec.add_argument("--out", type=Path, required=True)
    tab = sub.add_parser("table", help="print the markdown tables from the result JSON files")
    tab.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.command == "record":
        names = {"random_vs_grid.json": ("experiment", "methods")}
        if args.accumulation_a and args.accumulation_b:
            names["accumulation.json"] = ("experiment", "settings", "paired_t")
        try:  # only over this command's own earlier records
            for name, keys in names.items():
                check_json_output(str(args.out / name), keys)
        except PipelineError as e:
            raise SystemExit(f"error: {e}") from None
        args.out.mkdir(parents=True, exist_ok=True)
        records = {"random_vs_grid.json": record_search(args.random, args.grid)}
        if "accumulation.json" in names:
            records["accumulation.json"] = record_accumulation(args.accumulation_a, args.accumulation_b)
        for name, record in records.items():
            with atomic_write(str(args.out / name)) as f:
                f.write(json.dumps(record, indent=1) + "\n")
        results = args.out
    else:
        results = args.results
    for name, render in (("random_vs_grid.json", search_table), ("accumulation.json", accumulation_table)):
        if (results / name).exists():
            print(render(json.loads((results / name).read_text(encoding="utf-8"))) + "\n")


if __name__ == "__main__":
    main()
