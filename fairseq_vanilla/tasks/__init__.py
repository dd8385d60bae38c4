from .imdb_classification import ImdbClassificationTask  # noqa: F401 (registers)
