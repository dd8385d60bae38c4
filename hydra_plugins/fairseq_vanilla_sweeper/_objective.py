"""The ``hydra_objective`` repair of fairseq_vanilla/fairseq_fixes/, run in this module without importing the
``fairseq_vanilla`` package (so that ``common.user_dir`` still imports it first, from wherever it points).

An importable name matters: a launcher (joblib, submitit) pickles Hydra's task function, and with it the repaired
``_hydra_main``, by reference to this module; a worker process imports it back from here."""

from pathlib import Path

REPAIR = Path(__file__).resolve().parents[2] / "fairseq_vanilla" / "fairseq_fixes" / "hydra_objective.py"
exec(compile(REPAIR.read_text(encoding="utf-8"), str(REPAIR), "exec"))  # noqa: S102  (our own file)
