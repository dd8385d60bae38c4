"""Registers ``hydra/sweeper=fairseq_optuna`` and, in ``fairseq-hydra-train``, repairs its objective before trial 0.

Hydra imports every module of the ``hydra_plugins`` namespace while it starts, before it calls the task function.
When the running program is ``fairseq-hydra-train`` (``fairseq_cli.hydra_train`` is loaded, and with it fairseq),
the plugin calls :func:`fairseq_vanilla.register`, whose repairs include the objective's
(:mod:`fairseq_vanilla.fairseq_fixes.hydra_objective`); in any other Hydra program it imports nothing of the
package. The sweeper is imported only when a config selects it.
"""

import sys
from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf

if "fairseq_cli.hydra_train" in sys.modules:
    from fairseq_vanilla import register

    register()


@dataclass
class FairseqOptunaSweeperConf(OptunaSweeperConf):
    """Optuna's sweeper config; direction ``auto`` follows ``checkpoint.maximize_best_checkpoint_metric``,
    ``storage: null`` is ``sqlite:///<sweep dir>/optuna.db``, ``n_jobs: null`` is what the launcher runs at once."""

    _target_: str = "hydra_plugins.fairseq_vanilla_sweeper.fairseq_vanilla_sweeper.FairseqOptunaSweeper"
    direction: Any = "auto"
    study_name: Optional[str] = "sweep"
    n_jobs: Optional[int] = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="fairseq_optuna", node=FairseqOptunaSweeperConf, provider="fairseq_vanilla"
)


class FairseqOptunaSweeper(Sweeper):
    """Thin plugin class; the work is in :mod:`fairseq_vanilla.experiments.sweeps.sweeper` (imported on use)."""

    def __init__(self, **kwargs: Any) -> None:
        from fairseq_vanilla.experiments.sweeps.sweeper import FairseqOptunaSweeperImpl

        self.sweeper = FairseqOptunaSweeperImpl(**kwargs)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
