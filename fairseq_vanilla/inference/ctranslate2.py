"""Export a trained ``vanilla_transformer`` checkpoint to a CTranslate2 model (C++ inference, float32 or int8).

The model is written through CTranslate2's Python spec API (``TransformerSpec``), tensor by tensor, the way
CTranslate2's own fairseq converter writes fairseq's ``transformer`` (``ctranslate2/converters/fairseq.py``), with
the same choices for the special tokens: vocabularies in fairseq's dictionary order with ``<pad>`` renamed
``<blank>``, ``</s>`` appended to every source (``add_source_eos``) and ``</s>`` as the decoder's first input
(``decoder_start_token``), as fairseq-generate does. What differs from fairseq's ``transformer``:

- self-attention keys, queries and values are three matrices here (``W_Q``, ``W_K``, ``W_V``); CTranslate2 wants them
  fused, ``[W_Q; W_K; W_V]`` for self-attention and ``[W_K; W_V]`` for cross-attention;
- the positional table is the paper's (§3.5) interleaved ``sin, cos, sin, …`` (fairseq: all sines, then all
  cosines) and our position 0 is the first real token (fairseq: ``padding_idx + 1``). CTranslate2 looks row ``t``
  up for its ``t``-th token, counted from 0 after the right padding it uses, so our table is written as it is.

The exported folder also holds what raw text needs (``pipeline.txt``, the BPE codes and vocabulary or the
sentencepiece model), so that :class:`fairseq_vanilla.inference.fast_translator.FastTranslator` translates raw text
from the folder alone. The checkpoint is read through the project's safe loader.
"""

import argparse
import os
import shutil
from typing import Dict, List, Optional, Tuple

from ..fairseq_fixes.checkpoint_safety import safe_torch_load
from ..text.io import read_settings
from ..text.output_dirs import output_dir
from .ctranslate2_spec import ExportError, build_spec

SUPPORTED_MODELS = ("vanilla_transformer", "vanilla_transformer_align")
QUANTIZATIONS = ("float32", "int8", "int8_float32")
ASSET_FILES = {"bpe": ("codes",), "spm": ("spm.model",)}


def read_checkpoint(path: str) -> Tuple[Dict, Dict]:
    """(model config as a dict, state dict of numpy arrays) of a ``vanilla_transformer(_align)`` checkpoint."""
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY

    from .. import register

    register()  # our architectures, the safe loader
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such checkpoint")
    state = safe_torch_load(path)
    cfg = (state.get("cfg") or {}).get("model") if isinstance(state, dict) else None
    if cfg is None and isinstance(state, dict) and state.get("args") is not None:
        cfg = vars(state["args"])
    if cfg is None or "model" not in state:
        raise ExportError(f"{path}: not a fairseq checkpoint (no model config or no weights)")
    cfg = dict(vars(cfg) if isinstance(cfg, argparse.Namespace) else cfg)  # a Namespace in older checkpoints
    task = (state.get("cfg") or {}).get("task") or {}
    for lang in ("source_lang", "target_lang"):  # the dictionaries' names (dict.SRC.txt)
        if cfg.get(lang) is None:
            cfg[lang] = task.get(lang) if isinstance(task, dict) else getattr(task, lang, None)
    arch = cfg.get("_name") or cfg.get("arch")
    model = ARCH_MODEL_NAME_REGISTRY.get(arch, arch)
    if model not in SUPPORTED_MODELS:
        raise ExportError(
            f"{path}: architecture {arch!r} (model {model!r}) cannot be exported by this converter; "
            f"it exports {', '.join(SUPPORTED_MODELS)} (for fairseq's own models use "
            "ct2-fairseq-converter)"
        )
    weights = {k: v.float().numpy() for k, v in state["model"].items()}
    return cfg, weights


def read_dictionary(path: str) -> List[str]:
    """Symbols of a fairseq ``dict.*.txt`` in fairseq's order (``<s> <pad> </s> <unk>``, then the file's words),
    with ``<pad>`` written ``<blank>`` as CTranslate2's fairseq converter does."""
    from fairseq.data import Dictionary

    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing dictionary (the bin/ folder of the data the model was trained on)")
    return ["<blank>" if s == "<pad>" else s for s in Dictionary.load(path).symbols]


EXPORT_TOOL = "export-ctranslate2"  # the owner named in the output folder's marker (text.output_dirs)


def save_model(
    checkpoint: str,
    bin_dir: str,
    folder: str,
    quantization: str = "float32",
    src: Optional[str] = None,
    tgt: Optional[str] = None,
) -> Dict:
    """Write the CTranslate2 model of ``checkpoint`` with the dictionaries of ``bin_dir`` into the new ``folder``;
    returns the checkpoint's model config."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    cfg, weights = read_checkpoint(checkpoint)
    src = src or cfg.get("source_lang") or "en"
    tgt = tgt or cfg.get("target_lang") or "de"
    spec = build_spec(
        cfg,
        weights,
        read_dictionary(os.path.join(bin_dir, f"dict.{src}.txt")),
        read_dictionary(os.path.join(bin_dir, f"dict.{tgt}.txt")),
        path=checkpoint,
    )
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(folder)
    return cfg


def write_model(
    checkpoint: str,
    bin_dir: str,
    out: str,
    quantization: str = "float32",
    src: Optional[str] = None,
    tgt: Optional[str] = None,
    force: bool = False,
) -> str:
    """Export ``checkpoint`` with the dictionaries of ``bin_dir`` (``dict.SRC.txt``, ``dict.TGT.txt``) into ``out``.

    ``out`` is written only if it is new, empty or an earlier export, or with ``force``; only the files of the export
    are replaced (:func:`fairseq_vanilla.text.output_dirs.output_dir`), written in ``out.tmp`` and moved in when
    complete."""
    with output_dir(out, EXPORT_TOOL, force=force, reads=(checkpoint, bin_dir)) as tmp:
        save_model(checkpoint, bin_dir, tmp, quantization, src, tgt)
    return out


def read_pipeline(data: str) -> Dict[str, str]:
    """``key=value`` lines of a prepared folder's ``bin/pipeline.txt`` (written by the prepare scripts)."""
    path = os.path.join(data, "bin", "pipeline.txt")
    if not os.path.isdir(data):
        raise ExportError(f"{data}: no such prepared folder (the --out of a scripts/prepare-*.sh)")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing; --data must be the --out folder of a scripts/prepare-*.sh")
    return read_settings(path)


def export(checkpoint: str, data: str, out: str, quantization: str = "float32", force: bool = False) -> str:
    """Export ``checkpoint`` trained on the prepared folder ``data`` into ``out`` (as :func:`write_model`), with the
    raw-text assets (``pipeline.txt``; ``bpe/codes`` and ``bpe/vocab.SRC``, or ``spm/spm.model``) beside the model."""
    settings = read_pipeline(data)
    src, tgt = settings.get("src", "en"), settings.get("tgt", "de")
    segmentation = settings.get("segmentation", "bpe")
    assets = [os.path.join(segmentation, name) for name in ASSET_FILES.get(segmentation, ())]
    for rel in assets:
        if not os.path.isfile(os.path.join(data, rel)):
            raise ExportError(f"{os.path.join(data, rel)}: missing (raw text cannot be segmented without it)")
    vocab = os.path.join(segmentation, f"vocab.{src}")  # the prepare scripts' BPE vocabulary filter
    with output_dir(out, EXPORT_TOOL, force=force, reads=(checkpoint, data)) as tmp:
        cfg = save_model(checkpoint, os.path.join(data, "bin"), tmp, quantization, src, tgt)
        for rel in assets + ([vocab] if segmentation == "bpe" and os.path.isfile(os.path.join(data, vocab)) else []):
            shutil.copy(os.path.join(data, rel), os.path.join(tmp, os.path.basename(rel)))
        shutil.copy(os.path.join(data, "bin", "pipeline.txt"), os.path.join(tmp, "pipeline.txt"))
        with open(os.path.join(tmp, "pipeline.txt"), "a", encoding="utf-8") as f:  # the translator's length check
            for side in ("source", "target"):
                f.write(f"max_{side}_positions={int(cfg.get(f'max_{side}_positions') or 1024)}\n")
    return out
