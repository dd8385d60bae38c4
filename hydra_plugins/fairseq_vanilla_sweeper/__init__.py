"""fairseq-vanilla's Hydra plugin: the ``fairseq_optuna`` sweeper, and the objective repair for fairseq-hydra-train."""
