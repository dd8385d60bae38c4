"""Many trainings: tables of variations (``table/``), hyper-parameter sweeps (``sweeps/``), the memory planner
(``memory/``)."""
