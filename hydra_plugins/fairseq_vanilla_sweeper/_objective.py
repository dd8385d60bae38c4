"""The ``hydra_objective`` repair, imported under its own name without importing the ``fairseq_vanilla`` package.

Hydra imports this plugin in every Hydra program, so importing ``fairseq_vanilla`` here would load torch and fairseq
into all of them, and import the package before ``common.user_dir`` does. The repair's file is imported on its own, as
``fairseq_vanilla.fairseq_fixes.hydra_objective`` in ``sys.modules``: when the package is imported later its
``fairseq_fixes`` finds the module there, so there is one copy of it, under one name, in every process. A launcher
(joblib, submitit) pickles Hydra's task function, with the repaired ``_hydra_main``, by that name; a worker process
imports it back through the package."""

import importlib.util
import sys
from pathlib import Path

NAME = "fairseq_vanilla.fairseq_fixes.hydra_objective"
REPAIR = Path(__file__).resolve().parents[2] / "fairseq_vanilla" / "fairseq_fixes" / "hydra_objective.py"


def repair_module():
    """The repair's module: the one already imported, else its file imported under its own name."""
    if NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(NAME, REPAIR)
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[NAME]
            raise
    return sys.modules[NAME]
