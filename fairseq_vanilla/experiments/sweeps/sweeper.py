"""Optuna search over fairseq configs through Hydra: resumable, failure-tolerant, checked before any trial trains.

Hydra's Optuna sweeper (``hydra-optuna-sweeper``) with four changes a fairseq search needs:

* the study lives in ``<sweep dir>/optuna.db`` (SQLite) unless ``storage`` is given, and running the same command
  again finishes the missing trials only: finished trials (complete or failed) count towards ``n_trials``, a trial
  left running by a killed sweep is marked failed (``interrupted``) and replaced;
* a search parameter naming no field of the config is refused before any trial trains, and so is a
  ``checkpoint.save_dir`` every trial would share (trial 1 would resume trial 0's ``checkpoint_last.pt``);
* a trial that raises (NaN/inf loss, "minimum loss scale reached", out of memory) or ends without a finite
  objective is recorded as failed with its reason and the study goes on; a study where every trial failed raises;
* after every batch of trials ``trials.csv`` and ``best.yaml`` are rewritten (:mod:`.report`), plots at the end.

List-valued fairseq fields (``optimization.lr``, ``optimization.update_freq``) take a sampled scalar as ``[x]``.
"""

import dataclasses
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import optuna
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, ListConfig, OmegaConf

from . import report

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the sweep stopped before this trial finished"
_ABSENT = object()


def registered_fields(group: str, name: str):
    """Field names of the dataclass fairseq registered as ``group`` ``name`` (``None`` if unknown)."""
    from fairseq.models import MODEL_DATACLASS_REGISTRY
    from fairseq.registry import REGISTRIES
    from fairseq.tasks import TASK_DATACLASS_REGISTRY

    registry = {"model": MODEL_DATACLASS_REGISTRY, "task": TASK_DATACLASS_REGISTRY}.get(group)
    if registry is None and group in REGISTRIES:
        registry = REGISTRIES[group]["dataclass_registry"]
    dataclass = (registry or {}).get(name)
    return None if dataclass is None else {f.name for f in dataclasses.fields(dataclass)}


def unknown_search_fields(config: DictConfig, keys) -> list:
    """The keys among ``keys`` that name no field of ``config``, no registered field of its model/task/criterion/…
    and no config group (``+key`` additions and ``hydra.*`` are the user's business)."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    unknown = []
    for key in keys:
        name = key.lstrip("~")
        if key.startswith("+") or name.startswith("hydra.") or name in choices:
            continue
        parent, _, leaf = name.rpartition(".")
        node = OmegaConf.select(config, parent) if parent else config
        if isinstance(node, DictConfig) and leaf in node:
            continue
        group, _, field = name.partition(".")
        group_name = OmegaConf.select(config, f"{group}._name", default=None)
        fields = registered_fields(group, group_name) if group_name else None
        if fields is not None and field.split(".")[0] in fields:
            continue
        unknown.append(name)
    return unknown


# Hydra values that differ from trial to trial: a save_dir built from one of them is the trial's own.
PER_TRIAL = ("runtime.output_dir", "sweep.subdir", "job.num", "job.id", "job.override_dirname")


def shared_save_dir(config: DictConfig):
    """``checkpoint.save_dir`` as written (unresolved) when it would be the same folder for every trial of a sweep,
    else ``None`` (no checkpoint group, ``checkpoint.no_save``, or a path built from a per-trial Hydra value)."""
    checkpoint = OmegaConf.select(config, "checkpoint", default=None)
    if not isinstance(checkpoint, DictConfig) or checkpoint.get("no_save", False):
        return None
    raw = OmegaConf.to_container(checkpoint, resolve=False).get("save_dir")
    if not isinstance(raw, str) or any(f"hydra:{key}" in raw or f"hydra.{key}" in raw for key in PER_TRIAL):
        return None
    return raw


def config_file(config: DictConfig) -> str:
    """The primary config's file (``<--config-dir>/<--config-name>.yaml``), or its name."""
    name = config.hydra.job.config_name
    for source in OmegaConf.select(config, "hydra.runtime.config_sources", default=None) or []:
        if source.provider == "command-line" and source.schema == "file":
            return str(Path(source.path) / f"{name}.yaml")
    return repr(name)


def study_direction(direction, config: DictConfig) -> str:
    """``minimize``/``maximize`` from ``checkpoint.maximize_best_checkpoint_metric``; a contradicting explicit
    ``direction`` is refused."""
    maximize = bool(OmegaConf.select(config, "checkpoint.maximize_best_checkpoint_metric", default=False))
    wanted = "maximize" if maximize else "minimize"
    given = getattr(direction, "name", direction)
    if given not in (None, "auto", wanted):
        metric = OmegaConf.select(config, "checkpoint.best_checkpoint_metric", default="loss")
        raise ValueError(
            f"hydra.sweeper.direction={given} contradicts checkpoint.best_checkpoint_metric={metric} "
            f"with maximize_best_checkpoint_metric={maximize}: the study must {wanted}"
        )
    return wanted


def failure_reason(error: BaseException) -> str:
    """One line saying why a trial failed: ``diverged (…)``, ``out of memory (…)`` or the exception.

    The exception chain is searched: fairseq re-runs a diverged step under its NaN detector, which can raise a
    second error (seen: a bare ``StopIteration``) that hides the ``FloatingPointError`` it was handling."""
    chain, seen = [], error
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for link in chain:
        text = (f"{type(link).__name__}: {link}".strip().splitlines() or ["?"])[0][:300]
        lower = text.lower()
        if isinstance(link, FloatingPointError) or "minimum loss scale" in lower or re.search(r"\b(nan|inf)\b", lower):
            return f"diverged ({text})"
        if "out of memory" in lower or "outofmemory" in lower:
            return f"out of memory ({text})"
    return (f"{type(error).__name__}: {error}".strip().splitlines() or ["?"])[0][:300]


def reseed(sampler, seed: int) -> None:
    """Give a resumed sampler a new deterministic stream (otherwise it would replay the first trials' draws)."""
    for obj in (sampler, getattr(sampler, "_random_sampler", None)):
        if obj is not None and hasattr(obj, "_rng"):
            obj._rng = np.random.RandomState(seed)


class FairseqOptunaSweeperImpl(OptunaSweeperImpl):
    """Hydra's Optuna sweeper, resumable from ``<sweep dir>/optuna.db`` and tolerant of failed trials."""

    def _configure_trials(self, trials, search_space_distributions, fixed_params):
        overrides = super()._configure_trials(trials, search_space_distributions, fixed_params)
        listed = [tuple(self._as_list_if_needed(o) for o in trial_overrides) for trial_overrides in overrides]
        for trial, trial_overrides in zip(trials, listed):
            trial.set_user_attr("overrides", [o for o in trial_overrides if o.split("=", 1)[0] in trial.params])
        return listed

    def _as_list_if_needed(self, override: str) -> str:
        key, value = override.split("=", 1)
        node = OmegaConf.select(self.config, key, default=None)
        return f"{key}=[{value}]" if isinstance(node, ListConfig) and not value.startswith("[") else override

    def _parallel_jobs(self) -> int:
        if self.n_jobs:
            return self.n_jobs
        launcher = self.config.hydra.launcher
        n = launcher.get("n_jobs", None) or launcher.get("array_parallelism", None) or 1
        return os.cpu_count() or 1 if n < 0 else n

    def _tell(self, study, trial, ret) -> None:
        record = report.read_objective(ret.working_dir)
        for key in ("updates", "wall_time_s", "validations"):
            trial.set_user_attr(key, record.get(key))
        trial.set_user_attr("job_dir", str(ret.working_dir))
        try:
            value = ret.return_value
        except BaseException as error:  # the trial raised: Hydra keeps the exception in the JobReturn
            return self._fail(study, trial, failure_reason(error))
        value = record.get("objective") if value is None else value
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            return self._fail(study, trial, f"objective not finite ({value}): no validation ran or the loss diverged")
        study.tell(trial, value)

    @staticmethod
    def _fail(study, trial, reason: str) -> None:
        log.warning(f"trial {trial.number} failed: {reason}")
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def sweep(self, arguments) -> None:
        self._process_searchspace_config()
        distributions, fixed = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        for name in fixed:
            distributions.pop(name, None)
        unknown = unknown_search_fields(self.config, list(distributions) + list(fixed))
        if unknown:
            raise ValueError(
                f"search parameter(s) {', '.join(unknown)} name no field of the config "
                f"{config_file(self.config)} (nor of its model/task/criterion): "
                "check the spelling in hydra.sweeper.params or on the command line"
            )
        shared = None if "checkpoint.save_dir" in distributions else shared_save_dir(self.config)
        if shared is not None:
            raise ValueError(
                f"checkpoint.save_dir={shared}: every trial of the sweep would save to this one folder, and trial 1 "
                "would resume from trial 0's checkpoint_last.pt (fairseq: 'Cannot resume training due to dataloader "
                "mismatch'); drop the override (sweep=per_trial gives each trial ${hydra:runtime.output_dir}/"
                "checkpoints) or build it from a per-trial value, e.g. 'checkpoint.save_dir=/x/${hydra:job.num}'"
            )
        direction = study_direction(self.direction, self.config)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper: the command's record
        storage = self.storage or f"sqlite:///{sweep_dir.resolve() / 'optuna.db'}"
        if not isinstance(self.sampler, optuna.samplers.BaseSampler):
            raise ValueError("hydra/sweeper/sampler=grid is not supported here: use the basic sweeper for a grid")
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=self.sampler, direction=direction, load_if_exists=True
        )
        for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study._storage.set_trial_user_attr(stale._trial_id, "fail_reason", INTERRUPTED)
            study._storage.set_trial_state(stale._trial_id, optuna.trial.TrialState.FAIL)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.user_attrs.get("fail_reason") != INTERRUPTED for t in trials)
        seed = OmegaConf.select(self.config, "hydra.sweeper.sampler.seed", default=None)
        if trials and seed is not None:
            reseed(self.sampler, seed + len(trials))
        log.info(
            f"study {self.study_name!r} in {storage}: {done} of {self.n_trials} trials already done, "
            f"{direction}, sampler {type(self.sampler).__name__}"
        )
        self.job_idx = len(trials)
        to_go, batch = self.n_trials - done, self._parallel_jobs()
        while to_go > 0:
            asked = [study.ask() for _ in range(min(to_go, batch))]
            overrides = self._configure_trials(asked, distributions, fixed)
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            for trial, ret in zip(asked, returns):
                self._tell(study, trial, ret)
            report.write_tables(sweep_dir, study)
            to_go -= len(asked)
        report.finish(sweep_dir, study)
