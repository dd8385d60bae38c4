"""fairseq task ``text_classification``: one text in, one of N ≥ 2 labels out (sentence-classification layout).

``DATA/input0/{split}.bin|idx`` + ``dict.txt`` hold the BPE'd texts, ``DATA/label/{split}.bin|idx`` + ``dict.txt``
the labels, as ``fairseq-preprocess --only-source`` writes them (``scripts/prepare-classification.sh``,
``prepare-imdb.sh``); the classes are the label dictionary's entries. A sample is ``<s> text </s>`` (the ``<s>`` is
what ``--pooling first`` reads), truncated to ``--max-positions`` keeping the head, the tail or both; training batches
can be augmented on the fly (random deletion and swap of whole words, EDA), deterministically: the same ``--seed``,
epoch and text give the same augmentation.
"""

import logging
import os
from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
from fairseq.data import Dictionary, data_utils
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..fairseq_fixes.errors import FlagError, check_fraction
from .review_dataset import MADEUP, ReviewClassificationDataset

logger = logging.getLogger(__name__)

TRUNCATION_CHOICES = ChoiceEnum(["head", "tail", "head_tail"])


class ClassificationDataError(ValueError):
    """Bad classification data; the message names the file (and example) and the problem."""


@dataclass
class TextClassificationConfig(FairseqDataclass):
    data: str = field(
        default=MISSING, metadata={"help": "DIR/bin of scripts/prepare-classification.sh: input0/ (texts) and label/"}
    )
    max_positions: int = field(
        default=512, metadata={"help": "longest sample in tokens, <s> and </s> included; longer texts are truncated"}
    )
    truncation: TRUNCATION_CHOICES = field(
        default="head",
        metadata={
            "help": "which part of a long text is kept: head, tail, or head_tail (first quarter + last three quarters)"
        },
    )
    left_pad: bool = field(
        default=False, metadata={"help": "pad batches on the left (pre-padding) instead of the right"}
    )
    pad_to_length: int = field(
        default=0,
        metadata={
            "help": "pad every batch to this many positions, as Keras's pad_sequences(maxlen=N) does "
            "(0: to the batch's longest text)"
        },
    )
    random_deletion: float = field(
        default=0.0, metadata={"help": "training only: drop each word with this probability (EDA random deletion)"}
    )
    random_swap: float = field(
        default=0.0, metadata={"help": "training only: swap round(p·words) random word pairs (EDA random swap)"}
    )
    seed: int = II("common.seed")


@register_task("text_classification", dataclass=TextClassificationConfig)
class TextClassificationTask(FairseqTask):
    """Text classification into the label dictionary's classes for ``vanilla_transformer_classifier``."""

    PREPARED_BY = "scripts/prepare-classification.sh"  # named when the data folder is not one
    EXAMPLE = "text"  # what one example is called in messages

    def __init__(self, cfg: TextClassificationConfig, dictionary: Dictionary, label_dictionary: Dictionary):
        super().__init__(cfg)
        self.dictionary, self._label_dictionary = dictionary, label_dictionary

    @classmethod
    def setup_task(cls, cfg: TextClassificationConfig, **kwargs):
        if cfg.max_positions < 3:
            raise FlagError(f"--max-positions must be at least 3 (<s>, one token, </s>), got {cfg.max_positions}")
        if not 0 <= cfg.pad_to_length <= cfg.max_positions:
            raise FlagError(
                f"--pad-to-length must be in [0, --max-positions {cfg.max_positions}], got {cfg.pad_to_length}"
            )
        for name in ("random_deletion", "random_swap"):
            check_fraction(name, getattr(cfg, name))
        dicts = []
        for part in ("input0", "label"):
            path = os.path.join(cfg.data, part, "dict.txt")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: missing; is {cfg.data} the bin/ folder of {cls.PREPARED_BY}?")
            dicts.append(Dictionary.load(path))
        dictionary, labels = dicts
        classes = cls.class_names(labels)
        if len(classes) < 2:
            raise ClassificationDataError(
                f"{path}: {len(classes)} class ({', '.join(classes) or 'none'}); a classifier needs at least 2"
            )
        logger.info(f"[input0] dictionary: {len(dictionary)} types; [label] {classes}")
        return cls(cfg, dictionary, labels)

    @staticmethod
    def class_names(label_dictionary: Dictionary) -> List[str]:
        """Class index i ↔ label dictionary entry nspecial + i (fairseq sorts that dictionary by frequency).

        The ``madeupwordNNNN`` fillers of ``fairseq-preprocess --padding-factor`` (appended last) are not classes."""
        return [s for s in label_dictionary.symbols[label_dictionary.nspecial :] if not MADEUP.fullmatch(s)]

    @property
    def num_classes(self) -> int:
        return len(self.class_names(self._label_dictionary))

    def load_dataset(self, split: str, combine: bool = False, **kwargs):
        paths = {part: os.path.join(self.cfg.data, part, split) for part in ("input0", "label")}
        for part, path in paths.items():
            if not os.path.exists(path + ".idx"):
                raise FileNotFoundError(f"{path}.idx: split {split!r} is missing ({part}/)")
        texts = data_utils.load_indexed_dataset(paths["input0"], self.dictionary)
        label_ids = data_utils.load_indexed_dataset(paths["label"], self._label_dictionary)
        if len(texts) != len(label_ids):
            raise ClassificationDataError(
                f"{paths['input0']}: {len(texts)} {self.EXAMPLE}s but {paths['label']}: {len(label_ids)} labels"
            )
        empty = np.flatnonzero(np.asarray(texts.sizes) <= 1)
        if len(empty):
            raise ClassificationDataError(
                f"{paths['input0']}: {self.EXAMPLE} {empty[0] + 1} (of {len(texts)}) is empty"
            )
        nspecial = self._label_dictionary.nspecial
        labels = torch.empty(len(label_ids), dtype=torch.long)
        for i in range(len(label_ids)):
            item = label_ids[i]  # (label id, </s>)
            if len(item) != 2 or not nspecial <= item[0] < nspecial + self.num_classes:
                raise ClassificationDataError(
                    f"{paths['label']}: example {i + 1}: unknown label "
                    f"{self._label_dictionary.string(item[:-1])!r} "
                    f"(known: {', '.join(self.class_names(self._label_dictionary))})"
                )
            labels[i] = item[0] - nspecial
        training = split == "train"  # augmentation applies to the training split only
        self.datasets[split] = ReviewClassificationDataset(
            texts,
            labels,
            self.dictionary,
            self.cfg.max_positions,
            self.cfg.truncation,
            self.cfg.left_pad,
            deletion=self.cfg.random_deletion if training else 0.0,
            swap=self.cfg.random_swap if training else 0.0,
            seed=self.cfg.seed,
            pad_to_length=self.cfg.pad_to_length,
        )
        counts = torch.bincount(labels, minlength=self.num_classes).tolist()
        logger.info(f"{split}: {len(labels)} {self.EXAMPLE}s, classes {counts}")
        return self.datasets[split]

    def build_model(self, cfg, from_checkpoint: bool = False):
        model = super().build_model(cfg, from_checkpoint)
        if model.max_positions() < self.cfg.max_positions:
            raise FlagError(
                f"--max-positions {self.cfg.max_positions} exceeds the model's --max-source-positions "
                f"{model.max_positions()}"
            )
        return model

    def max_positions(self) -> int:
        return self.cfg.max_positions

    @property
    def source_dictionary(self) -> Dictionary:
        return self.dictionary

    @property
    def target_dictionary(self) -> Dictionary:
        return self.dictionary

    @property
    def label_dictionary(self) -> Dictionary:
        return self._label_dictionary
