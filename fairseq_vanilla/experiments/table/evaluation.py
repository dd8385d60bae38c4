"""The evaluation stages of a table job: dev perplexity (fairseq-validate), beam search on the dev set
(scripts/generate.sh), BLEU/chrF and the paired bootstrap against the base, alignment error; accuracy for a
classification table."""

import json
import os
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

from ...evaluation.alignment import alignment_agreement
from ...evaluation.significance import corpus_scores, paired_bootstrap, perplexity
from ...inference.split_predictions import accuracy as split_accuracy
from ...text.io import atomic_write, read_lines, read_settings
from . import spec as T
from .flops import parsed_flags
from .stages import (
    ROOT,
    USER_DIR,
    binary,
    last_float,
    log,
    read_log,
    run,
    tokenised_bleu,
    validate,
)


def validate_command(data: str, ckpt: str, task: str, subsets: str, flags: List[str]) -> List[str]:
    """fairseq-validate of a checkpoint on ``subsets`` (comma-separated), with this plugin and no loader workers."""
    where = [data, "--user-dir", USER_DIR, "--path", ckpt, "--task", task, "--valid-subset", subsets]
    return [binary("fairseq-validate"), *where, *flags, "--num-workers", "0"]


def has_cross_attention(flags: List[str]) -> bool:
    """Whether a row's model attends from the decoder to the encoder (so has an alignment to score): all but fairseq's
    ``lstm`` with ``--decoder-attention 0`` (the recurrent encoder-decoder without attention)."""
    return str(parsed_flags(flags).get("decoder_attention", True)).lower() not in ("0", "false")


def evaluate_translation(table, row, work, data, ckpt_dir, criterion, extra, args, threads, label, attention=True):
    """Dev perplexity (fairseq-validate) and dev BLEU/chrF of beam search (scripts/generate.sh) and the hypotheses;
    the paired bootstrap against the base is added by :func:`fill_significance` once base seed 1 is done. With
    ``attention`` (:func:`has_cross_attention`), also the alignment's agreement with the reference links."""
    ckpt = os.path.join(ckpt_dir, "checkpoint_last.pt")
    symbols = T.row_symbols(table, row, args.scale)
    decode = table["decode"]
    flags = ["--criterion", criterion, *extra, *T.loss_flags(symbols), "--max-tokens", "4096"]
    valid_log = validate(work, validate_command(data, ckpt, "translation", decode["split"], flags), threads, label)
    nll = last_float(valid_log, "nll_loss")
    gen_dir = os.path.join(work, decode["split"])
    if not os.path.isdir(gen_dir):
        log(f"{label}: decode {decode['split']} (beam {decode['beam']}, lenpen {decode['lenpen']})")
        run(
            [
                "bash",
                os.path.join(ROOT, "scripts", "generate.sh"),
                "--data",
                args.data,
                "--path",
                ckpt,
                "--out",
                gen_dir,
                "--split",
                decode["split"],
                "--beam",
                str(decode["beam"]),
                "--lenpen",
                str(decode["lenpen"]),
            ],
            os.path.join(work, "generate.log"),
            threads,
        )
    pipeline = read_settings(os.path.join(args.data, "bin", "pipeline.txt"))
    lower = pipeline.get("lower") == "1"
    splits = dict(line.split("\t") for line in read_lines(os.path.join(args.data, "bin", "splits.tsv")))
    hyps = read_lines(os.path.join(gen_dir, "hyp.txt"), allow_empty_file=True)
    scores = corpus_scores(hyps, read_lines(reference_file(args.data, decode["split"])), lowercase=lower)
    reference = os.path.join(args.data, "align", f"{decode['split']}.align")
    agreement = alignment_error(work, data, ckpt, reference, decode["split"], threads, label) if attention else {}
    return {
        **agreement,
        "symbols": symbols,
        "arch": row.get("arch") or "vanilla_transformer",
        "ppl": perplexity(nll),
        "nll_loss": nll,
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "bleu_tokenised": tokenised_bleu(os.path.join(gen_dir, "bleu.txt"), lower),
        "decode": decode,
        "dev_set": splits.get(decode["split"], decode["split"]),
        "lowercase": lower,
        "hypotheses": hyps,
        "significance": None,
    }


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


def evaluate_classification(work, data, ckpt_dir, threads, label):
    """Validation and test accuracy of the best checkpoint (by validation accuracy), fairseq-validate; and each test
    review's predicted and true class (:mod:`fairseq_vanilla.inference.split_predictions`), so that the test accuracy
    can be recomputed from the result file (it must equal fairseq-validate's to its 4 printed decimals)."""
    ckpt = os.path.join(ckpt_dir, "checkpoint_best.pt")
    command = validate_command(data, ckpt, "imdb_classification", "valid,test", ["--batch-size", "64"])
    valid_log = validate(work, command, threads, label)
    text = read_log(valid_log)
    acc = {}
    for subset in ("valid", "test"):
        found = re.findall(rf"valid on '{subset}' subset .*?accuracy ([0-9.]+)", text)
        if not found:
            raise RuntimeError(f"{valid_log}: no accuracy for subset {subset}")
        acc[f"accuracy_{subset}"] = float(found[-1])
    predictions = os.path.join(work, "test_predictions.json")
    if not os.path.exists(predictions):
        log(f"{label}: test predictions → {predictions}")
        module = "fairseq_vanilla.inference.split_predictions"
        where = ["--path", ckpt, "--data", data, "--subset", "test", "--out", predictions]
        run([sys.executable, "-m", module, *where], os.path.join(work, "predict.log"), threads)
    with open(predictions, encoding="utf-8") as f:
        record = json.load(f)
    recomputed = split_accuracy(record)
    if abs(recomputed - acc["accuracy_test"]) > 1e-4:
        raise RuntimeError(
            f"{predictions}: accuracy {recomputed:.4f} from the predictions, "
            f"{acc['accuracy_test']:.4f} from fairseq-validate"
        )
    return {**acc, "test_predictions": record}
