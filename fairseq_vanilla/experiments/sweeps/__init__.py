"""Hyper-parameter sweeps through Hydra: the Optuna sweeper, trials as tables and plots, random against grid."""
