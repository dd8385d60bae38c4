"""fairseq-hydra-train returns each trial's objective (best validation metric) and starts every trial clean.

Three defects of ``fairseq_cli/hydra_train.py`` and ``fairseq_cli/train.py`` stand between fairseq and a Hydra
sweeper: ``hydra_main`` calls ``_hydra_main(cfg)`` without ``return``, so the sweeper receives ``None``;
``_hydra_main`` returns the running average of the ``valid`` aggregator, not the best validation value; and the best
value lives in process-global function attributes (``checkpoint_utils.save_checkpoint.best``,
``should_stop_early.best``/``num_runs``), so a second trial in the same process (Hydra's basic launcher, a reused
joblib worker) starts with the first one's best and logs, saves and reports it as its own.

The repair, all in :func:`install`:

* ``fairseq_cli.train.validate`` is wrapped to keep the trial's best value of ``checkpoint.best_checkpoint_metric``
  (``min``, or ``max`` with ``maximize_best_checkpoint_metric``) and, inside a Hydra job, to write it with the
  update count and wall time to ``<job output dir>/objective.json`` after every validation. Installed as late as
  the ``common.user_dir`` import (inside the job, after Hydra has called the task), this still covers that trial,
  because ``fairseq_cli.train.main`` looks ``validate`` up at call time.
* ``fairseq_cli.hydra_train._hydra_main`` is replaced by :func:`clean_hydra_main`: reset the process-global state
  (best values, metrics aggregators, the ``random``/NumPy/torch seeds), train, return the tracked best (``inf``, or
  ``-inf`` when maximising, if no validation ran).
* the body of the task function Hydra holds (``hydra_main.__wrapped__``) is swapped for ``return _hydra_main(cfg)``.
  Hydra calls that same function object for every trial, so every trial that starts after :func:`install` returns
  its value. When fairseq-vanilla is installed, its Hydra plugin (``hydra_plugins/fairseq_vanilla_sweeper``) installs
  it (``fairseq_vanilla.register()``) during Hydra's plugin discovery, before the first trial, so the stock
  ``fairseq-hydra-train`` returns the objective from trial 0 on; loaded only through ``common.user_dir``, the first
  trial of a process still returns ``None`` (a sweeper says so loudly), and ``objective.json`` carries its value.

The originals are kept as ``fairseq_vanilla_original_<name>`` (:mod:`.patching`'s convention). A launcher (joblib,
submitit) pickles Hydra's task function, with the repaired ``_hydra_main``, by this module's name; a worker process
imports it back through the package.
"""

import json
import math
import os
import random
import time

DEFECT = (
    "fairseq-hydra-train's hydra_main drops the objective (returns None), and save_checkpoint.best leaks "
    "from one trial into the next in the same process"
)
UPSTREAM = (
    "fairseq_cli/hydra_train.py hydra_main: `_hydra_main(cfg)` without return; "
    "fairseq/checkpoint_utils.py save_checkpoint.best (a function attribute)"
)
CHECKED_AGAINST = "0.12.3.1"

OBJECTIVE_FILE = "objective.json"


TRIAL = {"best": None, "last": None, "updates": 0, "validations": 0, "start": time.time()}  # the running trial


def trial_state() -> dict:
    """The running trial's record (best and last validation value, updates, validations, start time)."""
    return TRIAL


def better(a, b, maximize: bool):
    """The better of two metric values (``None`` loses); NaN is never better than a number."""
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b
    return max(a, b) if maximize else min(a, b)


def objective(maximize: bool) -> float:
    """The trial's objective: its best validation value, or the worst possible value when none was recorded."""
    best = trial_state()["best"]
    if best is None:
        return -math.inf if maximize else math.inf
    return float(best)


def reset_trial_state(cfg) -> None:
    """Forget everything a previous trial in this process left behind; seed ``random``, NumPy and torch."""
    import numpy as np
    import torch
    from fairseq import checkpoint_utils, metrics
    from fairseq_cli import train

    for holder, names in (
        (checkpoint_utils.save_checkpoint, ("best",)),
        (train.should_stop_early, ("best", "num_runs")),
    ):
        for name in names:
            if hasattr(holder, name):
                delattr(holder, name)
    metrics.reset()
    seed = cfg.common.seed
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    trial_state().update(best=None, last=None, updates=0, validations=0, start=time.time())


def job_output_dir():
    """The running Hydra job's output folder, or ``None`` outside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None
    except Exception:  # an older Hydra without runtime.output_dir, or not a job
        return None


def write_objective(cfg) -> None:
    """Write the trial's record (metric, direction, best, last, updates, wall time) atomically into the job folder."""
    folder = job_output_dir()
    if folder is None:
        return
    maximize = bool(cfg.checkpoint.maximize_best_checkpoint_metric)
    trial = trial_state()
    record = {
        "metric": cfg.checkpoint.best_checkpoint_metric,
        "direction": "maximize" if maximize else "minimize",
        "objective": objective(maximize),
        "last": trial["last"],
        "updates": trial["updates"],
        "validations": trial["validations"],
        "wall_time_s": round(time.time() - trial["start"], 3),
    }
    path = os.path.join(folder, OBJECTIVE_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(record, out, indent=1)
    os.replace(path + ".tmp", path)


def tracking_validate(cfg, trainer, task, epoch_itr, subsets):
    """fairseq's ``validate``, then record the first subset's value as the trial's best-so-far."""
    from fairseq import distributed_utils
    from fairseq_cli import train

    losses = train.fairseq_vanilla_original_validate(cfg, trainer, task, epoch_itr, subsets)
    trial = trial_state()
    if losses and losses[0] is not None:
        value = float(losses[0])
        trial["last"] = value
        trial["best"] = better(value, trial["best"], bool(cfg.checkpoint.maximize_best_checkpoint_metric))
        trial["validations"] += 1
    trial["updates"] = trainer.get_num_updates()
    if distributed_utils.is_master(cfg.distributed_training):
        write_objective(cfg)
    return losses


def divergence_in(error: BaseException):
    """The ``FloatingPointError`` (NaN/inf, minimum loss scale) behind ``error``, if another error hides it.

    fairseq re-runs a diverged step under its NaN detector, and that can raise a second error (seen: a bare
    ``StopIteration``) whose only link to the divergence is ``__context__``, which a launcher's pickling drops."""
    seen = error.__cause__ or error.__context__
    while seen is not None and not isinstance(error, FloatingPointError):
        if isinstance(seen, FloatingPointError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def clean_hydra_main(cfg, **kwargs) -> float:
    """fairseq's ``_hydra_main`` from clean state; returns the trial's best validation value.

    Installs the repair first: in a launcher's fresh worker process this function arrives pickled inside the task
    function, before the plugin is imported there."""
    from fairseq_cli import hydra_train

    install()
    reset_trial_state(cfg)
    try:
        hydra_train.fairseq_vanilla_original__hydra_main(cfg, **kwargs)
    except Exception as error:
        raise (divergence_in(error) or error) from error
    return objective(bool(cfg.checkpoint.maximize_best_checkpoint_metric))


def returning_hydra_main(cfg):
    """The body fairseq's ``hydra_main`` should have had (``_hydra_main`` resolves in fairseq's module)."""
    return _hydra_main(cfg)  # noqa: F821  (runs with fairseq_cli.hydra_train's globals)


def install() -> None:
    """Wrap ``validate``, replace ``_hydra_main``, make ``hydra_main`` return its value (idempotent)."""
    import warnings

    with warnings.catch_warnings():  # hydra-core 1.3 warns at hydra_train's @hydra.main (no version_base) on import
        warnings.simplefilter("ignore", UserWarning)
        from fairseq_cli import hydra_train, train

    if not getattr(train.validate, "fairseq_vanilla_repair", False):
        train.fairseq_vanilla_original_validate = train.validate
        tracking_validate.fairseq_vanilla_repair = True
        train.validate = tracking_validate
    if not getattr(hydra_train._hydra_main, "fairseq_vanilla_repair", False):
        hydra_train.fairseq_vanilla_original__hydra_main = hydra_train._hydra_main
        clean_hydra_main.fairseq_vanilla_repair = True
        hydra_train._hydra_main = clean_hydra_main
    task_function = getattr(hydra_train.hydra_main, "__wrapped__", None)
    if task_function is not None and task_function.__code__.co_name != returning_hydra_main.__name__:
        hydra_train.fairseq_vanilla_original_hydra_main_code = task_function.__code__
        task_function.__code__ = returning_hydra_main.__code__
