"""Sweep results a person can read: ``trials.csv``, ``best.yaml`` and plots, from an Optuna study or a grid folder.

Each trial's job folder holds ``objective.json`` (written by the ``hydra_objective`` repair after every validation:
metric, direction, best value, updates, wall time). An Optuna sweep keeps its study in ``<sweep dir>/optuna.db``; a
grid (Hydra's basic sweeper) is read back from its job folders (``.hydra/overrides.yaml`` + ``objective.json``).

    python -m fairseq_vanilla.experiments.sweeps.report SWEEP_DIR     # (re)write the tables and plots of any sweep
"""

import argparse
import csv
import json
import logging
import math
import warnings
from pathlib import Path

import optuna
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage logs every migration plugin

OBJECTIVE_FILE = "objective.json"
STORAGE_FILE = "optuna.db"
STATES = optuna.trial.TrialState


def read_objective(job_dir) -> dict:
    """The record the trial wrote into its job folder, or ``{}``."""
    path = Path(str(job_dir)) / OBJECTIVE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if job_dir and path.exists() else {}


def trial_rows(study) -> list:
    """One dict per trial: number, state, objective, every searched parameter, updates, wall time, reason, folder."""
    names = sorted({name for t in study.trials for name in t.params})
    rows = []
    for t in study.trials:
        row = {"trial": t.number, "state": t.state.name, "objective": t.value}
        row.update({name: t.params.get(name) for name in names})
        row.update({key: t.user_attrs.get(key) for key in ("updates", "wall_time_s", "fail_reason", "job_dir")})
        rows.append(row)
    return rows


def write_tables(folder, study) -> None:
    """``trials.csv`` (all trials) and, once a trial has finished, ``best.yaml`` (overrides ready to paste)."""
    folder = Path(folder)
    rows = trial_rows(study)
    if rows:
        with open(folder / "trials.csv", "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    complete = study.get_trials(deepcopy=False, states=(STATES.COMPLETE,))
    if complete:
        best = study.best_trial
        overrides = best.user_attrs.get("overrides") or [f"{k}={v}" for k, v in best.params.items()]
        record = {
            "trial": best.number,
            "objective": best.value,
            "direction": study.direction.name.lower(),
            "overrides": list(overrides),
            "command_line": " ".join(overrides),
        }
        OmegaConf.save(OmegaConf.create(record), folder / "best.yaml")


def plot_importances(study, path) -> None:
    """Bar chart of Optuna's parameter importances (mean decrease in impurity of a random forest).

    Optuna 2.10's default fANOVA evaluator and its matplotlib importance plot fail under NumPy 2 / Matplotlib 3.9+,
    so the figure is drawn here from ``optuna.importance.get_param_importances``."""
    import matplotlib.pyplot as plt
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator

    importances = optuna.importance.get_param_importances(
        study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0)
    )
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance for the objective")
    ax.set_title("Hyper-parameter importances")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_plots(folder, study) -> list:
    """Optimisation history, parameter importances and slice plots (matplotlib backend) → the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    folder = Path(folder)
    complete = study.get_trials(deepcopy=False, states=(STATES.COMPLETE,))
    if not complete:
        return []
    written = []

    def save_optuna(name, draw):
        axes = draw(study)
        first = axes.flat[0] if hasattr(axes, "flat") else axes
        first.figure.savefig(folder / name, dpi=120, bbox_inches="tight")
        plt.close(first.figure)

    plots = [("optimization_history.png", lambda p: save_optuna(p, ovm.plot_optimization_history))]
    if len(complete) >= 2 and complete[0].params:
        plots += [
            ("param_importances.png", lambda p: plot_importances(study, folder / p)),
            ("slice.png", lambda p: save_optuna(p, ovm.plot_slice)),
        ]
    for name, draw in plots:
        try:
            draw(name)
            written.append(name)
        except Exception as error:  # a plot is never worth losing the results over
            log.warning(f"plot {name} not drawn: {type(error).__name__}: {error}")
    return written


def finish(folder, study) -> None:
    """Tables, plots and ``optimization_results.yaml``; raise if no trial finished."""
    folder = Path(folder)
    write_tables(folder, study)
    complete = study.get_trials(deepcopy=False, states=(STATES.COMPLETE,))
    if not complete:
        reasons = sorted({t.user_attrs.get("fail_reason", t.state.name) for t in study.trials})
        raise RuntimeError(
            f"every trial of the sweep in {folder} failed ({len(study.trials)} trials): " + "; ".join(reasons)
        )
    plots = write_plots(folder, study)
    best = study.best_trial
    OmegaConf.save(
        OmegaConf.create({"name": "optuna", "best_params": best.params, "best_value": best.value}),
        folder / "optimization_results.yaml",
    )
    log.info(
        f"best trial {best.number}: {best.value} with {best.params}; trials.csv, best.yaml, "
        f"{', '.join(plots)} in {folder}"
    )


def parse_value(text: str):
    """An override's value as a plot axis: ``[x]`` → x, numbers as numbers, anything else as text."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") and "," not in text else text
    try:
        number = float(inner)
        return int(number) if number.is_integer() and "." not in inner and "e" not in inner.lower() else number
    except ValueError:
        return text


def grid_study(folder):
    """An in-memory study of a finished or partial grid (Hydra's basic sweeper) rebuilt from its job folders."""
    folder = Path(folder)
    jobs = sorted(
        (p.parent.parent for p in folder.glob("*/.hydra/overrides.yaml")), key=lambda p: (len(p.name), p.name)
    )
    overrides = [dict(o.split("=", 1) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml")) for job in jobs]
    keys = sorted({k for o in overrides for k in o})
    searched = [k for k in keys if len({o.get(k) for o in overrides}) > 1] or keys
    records = [read_objective(job) for job in jobs]
    direction = next((r["direction"] for r in records if "direction" in r), "minimize")
    study = optuna.create_study(direction=direction)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # add_trial, stable since 2.0
    choices = {k: sorted({parse_value(o[k]) for o in overrides if k in o}, key=str) for k in searched}
    for job, given, record in zip(jobs, overrides, records):
        value = record.get("objective")
        ok = value is not None and math.isfinite(value)
        params = {k: parse_value(given[k]) for k in searched if k in given}
        study.add_trial(
            optuna.trial.create_trial(
                state=STATES.COMPLETE if ok else STATES.FAIL,
                value=value if ok else None,
                params=params,
                distributions={k: optuna.distributions.CategoricalDistribution(choices[k]) for k in params},
                user_attrs={
                    "overrides": [f"{k}={given[k]}" for k in params],
                    "job_dir": str(job),
                    "updates": record.get("updates"),
                    "wall_time_s": record.get("wall_time_s"),
                    "fail_reason": None if ok else (f"objective {value}" if record else f"no {OBJECTIVE_FILE}"),
                },
            )
        )
    return study


def load_study(folder):
    """The sweep's study: its Optuna storage if it has one, else the grid's job folders."""
    folder = Path(folder)
    if (folder / STORAGE_FILE).exists():
        storage = f"sqlite:///{(folder / STORAGE_FILE).resolve()}"
        name = optuna.get_all_study_summaries(storage)[0].study_name
        return optuna.load_study(study_name=name, storage=storage)
    return grid_study(folder)


def report(folder):
    """Write ``trials.csv``, ``best.yaml``, the plots and ``optimization_results.yaml`` of the sweep in ``folder``."""
    study = load_study(folder)
    finish(folder, study)
    return study


try:
    from hydra.experimental.callback import Callback
except ImportError:  # Hydra < 1.1: no callbacks, the command below still works
    Callback = object


class SweepReport(Callback):
    """Hydra callback: the report of the sweep folder at the end of a multirun (``hydra.callbacks``)."""

    def on_multirun_end(self, config, **kwargs) -> None:
        report(config.hydra.sweep.dir)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the folder of a fairseq-hydra-train -m sweep")
    folder = parser.parse_args(argv).sweep_dir
    if not folder.is_dir():
        parser.error(f"{folder}: no such sweep folder")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    report(folder)
    print(f"{folder}/trials.csv, best.yaml and plots written")


if __name__ == "__main__":
    main()
