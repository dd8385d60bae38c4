"""A table of variations (the paper's Table 3 is one): rows, their jobs through Hydra's launchers, result files,
the Markdown/CSV table."""
