"""Many trainings: the table-of-variations driver, hyper-parameter sweeps (their results and plots)."""
