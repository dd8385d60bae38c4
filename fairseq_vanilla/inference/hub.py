"""Raw text in, raw text out: trained models with the pipeline's own preprocessing, from Python.

    from fairseq_vanilla.inference.hub import load_translator, ReviewClassifier
    mt = load_translator("runs/m30/checkpoint_best.pt", "runs/multi30k")
    mt.translate("A man is riding a bike.", beam=5)  # → "ein mann fährt fahrrad ."
    clf = ReviewClassifier.from_pretrained("runs/imdb_cpu/ckpt/checkpoint_best.pt", "runs/imdb")
    clf.predict("A wonderful film.")  # → ("pos", 0.97)

``load_translator`` is fairseq's own hub interface (``GeneratorHubInterface``: ``translate``, ``sample``,
``generate``), built by :func:`~fairseq_vanilla.models.hub_interface.generator_hub_interface` with the tokenizer and
BPE that the data folder's ``bin/pipeline.txt`` names (:class:`Preprocessing`). Loading registers our models,
tasks and tokenizers first (:func:`fairseq_vanilla.register`).

``data`` is the ``--out`` folder of a prepare script (``scripts/prepare-multi30k.sh``, ``prepare-imdb.sh``, …): its
``bin/pipeline.txt`` says how the text was lower-cased and segmented, and ``bpe/codes`` or ``spm/spm.model`` segments
it. Checkpoints are read by fairseq's loader, which this package restricts to torch's ``weights_only`` unpickler.
Class names come from the label dictionary the model was trained with (fairseq sorts it by frequency, so index 0 is
not always "neg").
"""

import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch

from .. import register
from ..models.hub_interface import generator_hub_interface
from ..tasks.review_dataset import frame
from ..tasks.text_classification import TextClassificationTask
from ..text.imdb import clean_review
from ..text.io import read_settings
from ..text.moses import moses_tokenizer


def checkpoint_task(path: str) -> str:
    """The fairseq task a checkpoint was trained with (``cfg.task._name``, or ``args.task`` in older ones), read
    through the safe loader: what a command checks before it builds the model (a classifier's commands refuse a
    translation checkpoint in one line)."""
    from ..fairseq_fixes.checkpoint_safety import safe_torch_load

    state = safe_torch_load(path)
    task = (state.get("cfg") or {}).get("task") or {}
    name = task.get("_name") if hasattr(task, "get") else getattr(task, "_name", None)
    return name or getattr(state.get("args"), "task", None) or "unknown"


@dataclass(frozen=True)
class Preprocessing:
    """What a prepare script did to raw text, read from its ``--out`` folder's ``bin/pipeline.txt``: optional
    lower-casing, then Moses tokens segmented by subword-nmt BPE (``bpe/codes``), or sentencepiece on the raw text
    (``spm/spm.model``)."""

    data: str  # the prepare script's --out folder
    lower: bool
    sentencepiece: bool

    @classmethod
    def from_folder(cls, data: str) -> "Preprocessing":
        path = os.path.join(data, "bin", "pipeline.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: missing; --data must be the --out folder of the script that prepared the "
                f"model's data (scripts/prepare-multi30k.sh, prepare-wmt16-en-de.sh, run-demo.sh "
                f"or prepare-imdb.sh), which writes it"
            )
        settings = read_settings(path)
        return cls(data, lower=settings.get("lower") == "1", sentencepiece=settings.get("segmentation", "bpe") == "spm")

    @property
    def segmentation_model(self) -> str:
        """The sentencepiece model or the BPE codes."""
        folder, name = ("spm", "spm.model") if self.sentencepiece else ("bpe", "codes")
        return os.path.join(self.data, folder, name)

    def hub_args(self) -> Dict[str, object]:
        """The same steps as fairseq ``--tokenizer`` and ``--bpe`` choices with their flags, as keyword arguments of
        :func:`generator_hub_interface`."""
        if self.sentencepiece:  # sentencepiece ran on the raw (lower-cased) text
            args = dict(bpe="sentencepiece", sentencepiece_model=self.segmentation_model)
            if self.lower:
                args["tokenizer"] = "vanilla_lower"
            return args
        return dict(
            tokenizer="vanilla_moses", moses_lower=self.lower, bpe="subword_nmt", bpe_codes=self.segmentation_model
        )

    def encoder(self, lang: str = "en") -> Callable[[str], str]:
        """A function raw line → the segmented line the model reads (pieces joined by spaces); Moses rules of
        ``lang``."""
        if self.sentencepiece:  # sentencepiece ran on the raw (lower-cased) text
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=self.segmentation_model)
            lower = self.lower
            return lambda line: " ".join(sp.encode(line.lower() if lower else line, out_type=str))
        from subword_nmt.apply_bpe import BPE  # subword-nmt BPE ran on the Moses tokens

        with open(self.segmentation_model, encoding="utf-8") as codes:
            bpe = BPE(codes)
        tokenize = moses_tokenizer(lang, lower=self.lower)
        return lambda line: bpe.process_line(tokenize(line))


def load_translator(checkpoint: str, data: str, engine: str = "fairseq", **kwargs):
    """fairseq's ``GeneratorHubInterface`` for a translation checkpoint and the ``--out`` folder of its prepare script.

    ``kwargs`` go to :func:`generator_hub_interface` (e.g. ``beam=5``, which ``translate`` also takes per call).
    ``engine="ctranslate2"``: the checkpoint exported to CTranslate2 (a temporary folder, or ``out=DIR``) and
    loaded as a :class:`~fairseq_vanilla.inference.fast_translator.FastTranslator`, with the same ``translate``.
    """
    if engine == "ctranslate2":
        from .fast_translator import FastTranslator

        return FastTranslator.from_checkpoint(checkpoint, data, **kwargs)
    if engine != "fairseq":
        raise ValueError(f"engine must be 'fairseq' or 'ctranslate2', got {engine!r}")
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint")
    register()  # our architectures and tokenizers, the safe loader
    return generator_hub_interface(
        os.path.dirname(os.path.abspath(checkpoint)),
        os.path.basename(checkpoint),
        os.path.join(os.path.abspath(data), "bin"),
        **{**Preprocessing.from_folder(data).hub_args(), **kwargs},
    )


class ReviewClassifier:
    """A classifier and the exact preprocessing its training data went through."""

    def __init__(self, model, task: TextClassificationTask, data: str):
        self.model, self.task = model.eval(), task
        self.preprocess = Preprocessing.from_folder(data).encoder()
        self.classes = TextClassificationTask.class_names(task.label_dictionary)

    @classmethod
    def from_pretrained(cls, checkpoint: str, data: str) -> "ReviewClassifier":
        from fairseq import checkpoint_utils

        register()  # the task and models, the safe loader
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [checkpoint], arg_overrides={"data": os.path.join(data, "bin")}
        )
        if not isinstance(task, TextClassificationTask):
            raise ValueError(f"{checkpoint}: not a classifier checkpoint (task {type(task).__name__})")
        return cls(models[0], task, data)

    def encode(self, text: str) -> torch.Tensor:
        """Review → ``<s> ids </s>`` ``(T,)``, truncated as the task truncates."""
        line = self.preprocess(clean_review(text))
        d = self.task.source_dictionary
        ids = d.encode_line(line, add_if_not_exist=False, append_eos=False).long()
        return frame(ids, d, self.task.cfg.max_positions, self.task.cfg.truncation)

    @torch.no_grad()
    def predict_batch(self, texts: List[str]) -> List[Tuple[str, float]]:
        from fairseq.data import data_utils

        for i, text in enumerate(texts):
            if not clean_review(text):
                raise ValueError(f"review {i + 1} is empty")
        tokens = data_utils.collate_tokens(
            [self.encode(t) for t in texts],
            self.task.source_dictionary.pad(),
            left_pad=self.task.cfg.left_pad,
            pad_to_length=self.task.cfg.pad_to_length or None,  # as the model was trained (Keras-style fixed width)
        )  # (B, T)
        probs = torch.softmax(self.model(tokens).float(), dim=-1)  # (B, C)
        best = probs.argmax(dim=-1)
        return [(self.classes[int(b)], float(probs[i, b])) for i, b in enumerate(best)]

    def predict(self, text: str) -> Tuple[str, float]:
        """(label, probability) for one review."""
        return self.predict_batch([text])[0]
