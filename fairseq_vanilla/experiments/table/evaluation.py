"""The evaluation stages the tasks of a table (:mod:`.tasks`) share: fairseq-validate of a checkpoint; for a
translation, the reference of a split, the paired bootstrap against the base and the alignment's agreement with
reference links (also layer by layer, scripts/alignment-by-layer.py)."""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from ...evaluation.alignment import alignment_agreement
from ...evaluation.significance import paired_bootstrap
from ...text.io import atomic_write, read_lines, read_settings
from . import spec as T
from .flops import parsed_flags
from .stages import (
    USER_DIR,
    binary,
    log,
    run,
)


def validate_command(data: str, ckpt: str, task: str, subsets: str, flags: List[str]) -> List[str]:
    """fairseq-validate of a checkpoint on ``subsets`` (comma-separated), with this plugin and no loader workers."""
    where = [data, "--user-dir", USER_DIR, "--path", ckpt, "--task", task, "--valid-subset", subsets]
    return [binary("fairseq-validate"), *where, *flags, "--num-workers", "0"]


def has_cross_attention(flags: List[str]) -> bool:
    """Whether a row's model attends from the decoder to the encoder (so has an alignment to score): all but fairseq's
    ``lstm`` with ``--decoder-attention 0`` (the recurrent encoder-decoder without attention)."""
    return str(parsed_flags(flags).get("decoder_attention", True)).lower() not in ("0", "false")


def reference_file(prepared: str, split: str) -> str:
    """The detokenised reference of ``split`` in a prepare script's --out folder."""
    tgt = read_settings(os.path.join(prepared, "bin", "pipeline.txt"))["tgt"]
    return os.path.join(prepared, "raw", f"{split}.{tgt}")


def fill_significance(
    found: Dict[Tuple[str, int], Dict[str, Any]], results: str, prepared: str, base_id: str
) -> List[str]:
    """Give every translation result (but the base's) that has none the paired bootstrap of its hypotheses against
    seed 1 of the base row ``base_id`` (:func:`.spec.base_id`), in ``found`` (the result files of ``results``, as
    :func:`.table.load_results` reads them) and written back into its file; returns the row ids filled. Rows may
    finish before the base does (several jobs at once), so the test is made whenever both are there."""
    base = found.get((base_id, 1))
    if base is None or "hypotheses" not in base:
        return []
    refs = read_lines(reference_file(prepared, base["decode"]["split"]))
    filled = []
    for (row_id, seed), r in sorted(found.items()):
        if row_id == base_id or r.get("significance") is not None or "hypotheses" not in r:
            continue
        r["significance"] = paired_bootstrap(base["hypotheses"], r["hypotheses"], refs, lowercase=r["lowercase"])
        with atomic_write(os.path.join(results, T.result_name(row_id, seed))) as f:
            json.dump(r, f, indent=1, ensure_ascii=False)
        filled.append(row_id)
    return filled


def alignment_error(work, data, ckpt, reference, split, threads, label, overrides=None, name=None) -> Dict[str, float]:
    """Where the prepared folder has reference links (scripts/prepare-alignments.sh), the agreement of the model's
    alignment (``--print-alignment`` on the reference translation) with them: precision, recall, AER. ``overrides``
    (``--model-overrides``: ``alignment_layer``, ``alignment_heads``) picks another layer or heads, ``name`` its
    output file."""
    if not os.path.isfile(reference):
        return {}
    out = os.path.join(work, f"{name or split}.align.out")
    if not os.path.exists(out):
        log(f"{label}: alignment of the reference translations (--score-reference --print-alignment) {overrides or ''}")
        extra = ["--model-overrides", repr(overrides)] if overrides else []
        run(
            [
                binary("fairseq-generate"),
                data,
                "--user-dir",
                USER_DIR,
                "--path",
                ckpt,
                "--gen-subset",
                split,
                "--score-reference",
                "--print-alignment",
                "--max-tokens",
                "4096",
                *extra,
                "--results-path",
                out + ".tmp",
            ],
            os.path.join(work, "align.log"),
            threads,
        )
        os.replace(os.path.join(out + ".tmp", f"generate-{split}.txt"), out)
    found = alignment_agreement(out, reference)
    return {"alignment": {k: found[k] for k in ("precision", "recall", "aer")}}


def alignment_by_layer(work, data, ckpt, reference, split, threads, layers: int, heads: Tuple[Optional[int], ...]):
    """:func:`alignment_error` of every decoder layer's cross-attention, for each of ``heads`` (None: the model's own
    setting, all heads averaged in a plain model; k: the first k heads averaged, an alignment model's
    ``alignment_heads``): {heads: [{layer, precision, recall, aer}, …]}."""
    table = {}
    for k in heads:
        rows = []
        for layer in range(layers):
            overrides = {"alignment_layer": layer, **({"alignment_heads": k} if k else {})}
            name = f"{split}.L{layer}" + (f".H{k}" if k else "")
            found = alignment_error(work, data, ckpt, reference, split, threads, f"layer {layer}", overrides, name)
            rows.append({"layer": layer, **found["alignment"]})
        table["model" if k is None else f"first {k} head(s)"] = rows
    return table
