from .imdb_classification import ImdbClassificationTask  # noqa: F401 (registers)
from .text_classification import TextClassificationTask  # noqa: F401 (registers)
from .translation_merged_batches import TranslationMergedBatchesTask  # noqa: F401 (registers)
