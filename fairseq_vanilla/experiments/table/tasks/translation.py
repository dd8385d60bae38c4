"""Translation (a table file's ``kind: translation``, the default; the paper's Table 3): rows as changes of the
paper's symbols from a base recipe, trained with label-smoothed cross-entropy, scored by dev perplexity
(fairseq-validate), BLEU/chrF of beam search (scripts/generate.sh) and the alignment's agreement with reference
links; the paired bootstrap against base seed 1 and the training FLOPs filled in once the results are there."""

import math
import os
from typing import Any, Dict, List, Tuple

from ....evaluation.seed_statistics import mean_std
from ....evaluation.significance import corpus_scores, perplexity
from ....text.io import read_lines, read_settings
from .. import render as R
from .. import spec as T
from ..evaluation import alignment_error, fill_significance, has_cross_attention, reference_file, validate_command
from ..flops import fill_flops
from ..stages import ROOT, last_float, log, run, tokenised_bleu, validate
from ..task import Column, Job, Results, Table, TableTask

CRITERIA = {"vanilla_transformer_align": ["vanilla_label_smoothed_cross_entropy_with_alignment", "--load-alignments"]}
DEFAULT_CRITERION = ["vanilla_label_smoothed_cross_entropy"]

COLUMNS = (
    ("row", "", 2),
    ("variant", "", 2),
    ("N", "N", 2),
    ("d_model", "d_model", 2),
    ("d_ff", "d_ff", 2),
    ("h", "h", 2),
    ("d_k", "d_k", 2),
    ("d_v", "d_v", 2),
    ("P_drop", "P_drop", 2),
    ("eps_ls", "ε_ls", 2),
    ("steps", "steps", 2),
    ("seeds", "seeds", 2),
    ("ppl_dev", "PPL (dev)", 2),
    ("bleu_dev", "BLEU (dev)", 2),
    ("chrf_dev", "chrF", 2),
    ("delta_bleu", "ΔBLEU", 2),
    ("delta_bleu_ci", "95 % interval", 2),
    ("verdict", "verdict (seeds)", 2),
    ("p_seeds", "p (seeds)", 3),
    ("verdict_holm", "verdict (Holm)", 2),
    ("p_value", "p (test set)", 3),
    ("aer", "AER", 2),
    ("params_millions", "params ×10⁶", 1),
    ("train_minutes", "train min", 1),
    ("updates_per_second", "updates/s", 2),
    ("mflops_per_token", "train MFLOPs/target token", 1),
    ("device", "trained on", 2),
    ("paper_ppl", "paper PPL", 2),
    ("paper_bleu", "paper BLEU", 2),
    ("paper_params", "paper params", 2),
)


def criterion(row: Dict[str, Any]) -> List[str]:
    """Label-smoothed cross-entropy; with the alignments it needs for an alignment model (``arch``)."""
    name, *flags = CRITERIA.get(row.get("arch") or "", DEFAULT_CRITERION)
    return ["--criterion", name, *flags]


def has_dictionary(folder: str) -> bool:
    """A binarised folder with its dictionaries (``dict.SRC.txt``, ``dict.TGT.txt``)."""
    return os.path.isdir(folder) and any(n.startswith("dict.") for n in os.listdir(folder))


def missing_inputs(table: Table, prepared: str) -> List[str]:
    """What a prepare script's --out folder lacks of what the table reads there: its records (``bin/pipeline.txt``,
    ``bin/splits.tsv``) and the reference of the split the table decodes (``raw/SPLIT.TGT``), which scores every
    row and the paired bootstrap."""
    records = [
        name for name in ("bin/pipeline.txt", "bin/splits.tsv") if not os.path.isfile(os.path.join(prepared, name))
    ]
    if records:
        return records
    reference = reference_file(prepared, table["decode"]["split"])
    return [] if os.path.isfile(reference) else [os.path.relpath(reference, prepared)]


def evaluate(job: Job) -> Dict[str, Any]:
    """Dev perplexity (fairseq-validate) and dev BLEU/chrF of beam search (scripts/generate.sh) and the hypotheses;
    the paired bootstrap against the base is added by :func:`complete` once base seed 1 is done. Where the model
    attends to the source (:func:`.evaluation.has_cross_attention`), also the alignment's agreement with the
    reference links."""
    ckpt = os.path.join(job.checkpoints, "checkpoint_last.pt")
    symbols = T.row_symbols(job.table, job.row, job.scale)
    decode = job.table["decode"]
    flags = [*job.criterion, *T.loss_flags(symbols), "--max-tokens", "4096"]
    command = validate_command(job.data, ckpt, "translation", decode["split"], flags)
    valid_log = validate(job.work, command, job.threads, job.label)
    nll = last_float(valid_log, "nll_loss")
    gen_dir = os.path.join(job.work, decode["split"])
    if not os.path.isdir(gen_dir):
        log(f"{job.label}: decode {decode['split']} (beam {decode['beam']}, lenpen {decode['lenpen']})")
        where = ["--data", job.prepared, "--path", ckpt, "--out", gen_dir, "--split", decode["split"]]
        search = ["--beam", str(decode["beam"]), "--lenpen", str(decode["lenpen"])]
        generate = ["bash", os.path.join(ROOT, "scripts", "generate.sh"), *where, *search]
        run(generate, os.path.join(job.work, "generate.log"), job.threads)
    pipeline = read_settings(os.path.join(job.prepared, "bin", "pipeline.txt"))
    lower = pipeline.get("lower") == "1"
    splits = dict(line.split("\t") for line in read_lines(os.path.join(job.prepared, "bin", "splits.tsv")))
    hyps = read_lines(os.path.join(gen_dir, "hyp.txt"), allow_empty_file=True)
    scores = corpus_scores(hyps, read_lines(reference_file(job.prepared, decode["split"])), lowercase=lower)
    reference = os.path.join(job.prepared, "align", f"{decode['split']}.align")
    agreement = {}
    if has_cross_attention(job.flags):  # no alignment to score without it
        agreement = alignment_error(job.work, job.data, ckpt, reference, decode["split"], job.threads, job.label)
    return {
        **agreement,
        "symbols": symbols,
        "arch": job.row.get("arch") or "vanilla_transformer",
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


def complete(table: Table, found: Results, results: str, prepared: str) -> None:
    """The paired bootstraps against base seed 1 and the FLOPs counts still missing
    (:func:`.evaluation.fill_significance`, :func:`.flops.fill_flops`; not of the rows reused from another table)."""
    fill_significance(found, results, prepared, T.base_id(table))
    fill_flops(found, results, prepared, skip=(table.get("reuse") or {}).get("rows", ()))


def columns(table: Table) -> Tuple[Column, ...]:
    """The rendered columns, the perplexity and BLEU headed by the split the table decodes: "(dev)" for ``valid``
    (Table 3), the split's own name otherwise (the positions table decodes ``test``)."""
    split = table["decode"]["split"]
    name = "dev" if split == "valid" else split
    return tuple((key, heading.replace("(dev)", f"({name})"), digits) for key, heading, digits in COLUMNS)


def table_rows(table: Table, results: Results) -> List[Dict[str, Any]]:
    """One line per row of the table that has at least one result: seed means (± std where > 1 seed), ΔBLEU
    against the base's mean with its 95 % interval and verdict over seeds (:func:`.render.against_base`: Welch, or a
    prediction interval for a one-seed row), and the paired bootstrap's p against base seed 1 (stored in the result)."""
    from ....modules.sizes import head_dims  # torch: imported when a table is rendered, not when one is read

    base_bleu = [r["bleu"] for r in R.seed_runs(results, T.base_id(table))]
    lines = []
    for row in table["rows"]:
        runs = R.seed_runs(results, row["id"])
        if not runs:
            continue
        sym = runs[0]["symbols"]
        ppl, bleu, chrf = (mean_std([r[k] for r in runs]) for k in ("ppl", "bleu", "chrf"))
        pvals = [r["significance"]["bleu"]["p_value"] for r in runs if r.get("significance")]
        paper = row.get("paper") or {}
        vs_base = R.against_base(table, row, base_bleu, [r["bleu"] for r in runs], 2)
        if row.get("stock"):  # a stock architecture: the Transformer's symbols do not describe it (see its flags)
            sym = {k: None for k in ("N", "d_model", "d_ff", "h", "d_k", "d_v", "P_drop")} | {
                "eps_ls": sym["eps_ls"],
                "steps": sym["steps"],
            }
            d_k = d_v = None
        else:
            d_k, d_v = head_dims(sym["d_model"], sym["h"], sym.get("d_k"), sym.get("d_v"))
        lines.append(
            {
                "id": row["id"],
                "row": row["row"],
                "variant": row["variant"],
                "N": sym["N"],
                "d_model": sym["d_model"],
                "d_ff": sym["d_ff"],
                "h": sym["h"],
                "d_k": d_k,
                "d_v": d_v,
                "P_drop": sym["P_drop"],
                "eps_ls": sym["eps_ls"],
                "steps": sym["steps"],
                "seeds": len(runs),
                "ppl_dev": ppl,
                "bleu_dev": bleu,
                "chrf_dev": chrf,
                "delta_bleu": vs_base["delta"],
                "delta_bleu_ci": vs_base["interval"],
                "verdict": vs_base["verdict"],
                "p_seeds": vs_base["p"],
                "p_value": pvals[0] if pvals else None,
                "params_millions": runs[0]["params"] / 1e6,
                "aer": mean_std([r["alignment"]["aer"] for r in runs]) if all("alignment" in r for r in runs) else None,
                "train_minutes": mean_std([r["train_seconds"] / 60 for r in runs])["mean"],
                "updates_per_second": _updates_per_second(runs),
                "mflops_per_token": runs[0]["flops"]["training_per_target_token"] / 1e6 if "flops" in runs[0] else None,
                "device": ", ".join(sorted({r["versions"].get("device", "not recorded") for r in runs})),
                "paper_ppl": paper.get("ppl"),
                "paper_bleu": paper.get("bleu"),
                "paper_params": paper.get("params"),
            }
        )
    return R.with_holm(lines)


def _updates_per_second(runs: List[Dict[str, Any]]) -> Any:
    """Updates over training seconds, the mean over seeds that record both (else empty)."""
    rates = [r["updates"] / r["train_seconds"] for r in runs if r.get("updates") and r.get("train_seconds")]
    return mean_std(rates)["mean"] if rates else None


TASK = TableTask(
    name="translation",
    table_keys=("base", "decode"),
    scale_keys=("dim_factor", "step_factor", "flags"),
    missing_inputs=missing_inputs,
    has_dictionary=has_dictionary,
    criterion=criterion,
    curve="ppl",
    evaluate=evaluate,
    figures=("ppl", "bleu", "chrf"),
    ranges={"bleu": (0.0, 100.0), "chrf": (0.0, 100.0), "bleu_tokenised": (0.0, 100.0), "ppl": (1.0, math.inf)},
    complete=complete,
    lines=table_rows,
    columns=columns,
)
