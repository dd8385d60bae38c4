"""Raw text in, raw text out: trained models with the pipeline's own preprocessing, from Python.

    from fairseq_vanilla.hub import load_translator, ReviewClassifier
    mt = load_translator("runs/m30/checkpoint_best.pt", "runs/multi30k")
    mt.translate("A man is riding a bike.", beam=5)  # → "ein mann fährt fahrrad ."
    clf = ReviewClassifier.from_pretrained("runs/imdb_cpu/ckpt/checkpoint_best.pt", "runs/imdb")
    clf.predict("A wonderful film.")  # → ("pos", 0.97)

``load_translator`` is fairseq's own hub interface (``GeneratorHubInterface``: ``translate``, ``sample``,
``generate``), built by :meth:`VanillaTransformerModel.from_pretrained` with the tokenizer and BPE that the data
folder's ``bin/pipeline.txt`` names.

``data`` is the ``--out`` folder of ``scripts/prepare-imdb.sh`` (its ``bin/pipeline.txt`` says how reviews were
lower-cased and segmented, and ``bpe/codes`` or ``spm/spm.model`` segments them). The checkpoint is read by
fairseq's loader, which this package restricts to torch's ``weights_only`` unpickler. Class names come from the
label dictionary the model was trained with (fairseq sorts it by frequency, so index 0 is not always "neg").
"""
import os
from typing import Dict, List, Tuple

import torch

from .pipeline import clean_review, moses_tokenizer, read_settings
from .tasks.imdb_classification import ImdbClassificationTask, frame


def read_pipeline_settings(data: str) -> Dict[str, str]:
    path = os.path.join(data, "bin", "pipeline.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; --data must be the --out folder of the script that prepared the "
                                f"model's data (scripts/prepare-multi30k.sh, prepare-wmt16-en-de.sh, run-demo.sh or "
                                f"prepare-imdb.sh), which writes it")
    return read_settings(path)


def pipeline_hub_args(data: str) -> Dict[str, object]:
    """The ``from_pretrained`` keyword arguments (tokenizer, bpe and their flags) that repeat ``data``'s preprocessing."""
    settings = read_pipeline_settings(data)
    lower = settings.get("lower") == "1"
    if settings.get("segmentation", "bpe") == "spm":  # sentencepiece ran on the raw (lower-cased) text
        args = dict(bpe="sentencepiece", sentencepiece_model=os.path.join(data, "spm", "spm.model"))
        if lower:
            args["tokenizer"] = "vanilla_lower"
        return args
    return dict(tokenizer="vanilla_moses", moses_lower=lower, bpe="subword_nmt",
                bpe_codes=os.path.join(data, "bpe", "codes"))


def load_translator(checkpoint: str, data: str, engine: str = "fairseq", **kwargs):
    """fairseq's ``GeneratorHubInterface`` for a translation checkpoint and the ``--out`` folder of its prepare script.

    ``kwargs`` go to ``from_pretrained`` (e.g. ``beam=5``, which ``translate`` also takes per call).
    ``engine="ctranslate2"``: the checkpoint exported to CTranslate2 (a temporary folder, or ``out=DIR``) and
    loaded as a :class:`~fairseq_vanilla.inference.fast_translator.FastTranslator`, with the same ``translate``.
    """
    if engine == "ctranslate2":
        from .inference.fast_translator import FastTranslator

        return FastTranslator.from_checkpoint(checkpoint, data, **kwargs)
    if engine != "fairseq":
        raise ValueError(f"engine must be 'fairseq' or 'ctranslate2', got {engine!r}")
    from .models import VanillaTransformerModel

    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint")
    return VanillaTransformerModel.from_pretrained(
        os.path.dirname(os.path.abspath(checkpoint)), os.path.basename(checkpoint), os.path.join(os.path.abspath(data), "bin"),
        **{**pipeline_hub_args(data), **kwargs})


class ReviewClassifier:
    """A classifier and the exact preprocessing its training data went through."""

    def __init__(self, model, task: ImdbClassificationTask, data: str):
        self.model, self.task = model.eval(), task
        settings = read_pipeline_settings(data)
        lower = settings.get("lower") == "1"
        if settings.get("segmentation", "bpe") == "spm":  # sentencepiece ran on the raw (lower-cased) text
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=os.path.join(data, "spm", "spm.model"))
            self.tokenize = (lambda line: line.lower()) if lower else (lambda line: line)
            self.segment = lambda line: " ".join(sp.encode(line, out_type=str))
        else:  # subword-nmt BPE ran on the Moses tokens
            from subword_nmt.apply_bpe import BPE

            with open(os.path.join(data, "bpe", "codes"), encoding="utf-8") as codes:
                bpe = BPE(codes)
            self.tokenize = moses_tokenizer("en", lower=lower)
            self.segment = bpe.process_line
        self.classes = ImdbClassificationTask.class_names(task.label_dictionary)

    @classmethod
    def from_pretrained(cls, checkpoint: str, data: str) -> "ReviewClassifier":
        from fairseq import checkpoint_utils

        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [checkpoint], arg_overrides={"data": os.path.join(data, "bin")})
        if not isinstance(task, ImdbClassificationTask):
            raise ValueError(f"{checkpoint}: not a classifier checkpoint (task {type(task).__name__})")
        return cls(models[0], task, data)

    def encode(self, text: str) -> torch.Tensor:
        """Review → ``<s> ids </s>`` ``(T,)``, truncated as the task truncates."""
        line = self.segment(self.tokenize(clean_review(text)))
        d = self.task.source_dictionary
        ids = d.encode_line(line, add_if_not_exist=False, append_eos=False).long()
        return frame(ids, d, self.task.cfg.max_positions, self.task.cfg.truncation)

    @torch.no_grad()
    def predict_batch(self, texts: List[str]) -> List[Tuple[str, float]]:
        from fairseq.data import data_utils

        for i, text in enumerate(texts):
            if not clean_review(text):
                raise ValueError(f"review {i + 1} is empty")
        tokens = data_utils.collate_tokens([self.encode(t) for t in texts], self.task.source_dictionary.pad(),
                                           left_pad=self.task.cfg.left_pad)  # (B, T)
        probs = torch.softmax(self.model(tokens).float(), dim=-1)  # (B, C)
        best = probs.argmax(dim=-1)
        return [(self.classes[int(b)], float(probs[i, b])) for i, b in enumerate(best)]

    def predict(self, text: str) -> Tuple[str, float]:
        """(label, probability) for one review."""
        return self.predict_batch([text])[0]
