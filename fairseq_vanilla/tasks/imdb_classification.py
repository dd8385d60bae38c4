"""fairseq task ``imdb_classification``: ``text_classification`` preset for IMDB sentiment (prepare-imdb.sh's data).

The same task, dataset and numbers as ``text_classification`` (one review in, one label out; ``--max-positions`` 512,
``--truncation head`` by default); only its name, kept for the checkpoints and recipes that use it, and its messages,
which speak of reviews and name ``scripts/prepare-imdb.sh``, differ.
"""

from dataclasses import dataclass, field

from fairseq.tasks import register_task
from omegaconf import MISSING

from .text_classification import (  # noqa: F401 (ClassificationDataError: imported from here too)
    ClassificationDataError,
    TextClassificationConfig,
    TextClassificationTask,
)


@dataclass
class ImdbClassificationConfig(TextClassificationConfig):
    data: str = field(
        default=MISSING, metadata={"help": "DIR/bin of scripts/prepare-imdb.sh: input0/ (reviews) and label/"}
    )


@register_task("imdb_classification", dataclass=ImdbClassificationConfig)
class ImdbClassificationTask(TextClassificationTask):
    """Sentence classification (IMDB sentiment) for ``vanilla_transformer_classifier``: ``text_classification``."""

    PREPARED_BY = "scripts/prepare-imdb.sh"
    EXAMPLE = "review"
