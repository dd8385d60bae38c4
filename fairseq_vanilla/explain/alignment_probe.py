"""Where a translation model's cross-attention aligns, head by head, and whether gradients agree: one pass per batch.

The reference translations of a split are teacher-forced (as ``fairseq-generate --score-reference``); from that one
forward pass come (a) every decoder layer's cross-attention, per head ``(B, h, T, S)``, and (b) a gradient-based
alignment: for each target position t, the gradient of log p(y_t) with respect to the source token embeddings (the
output of the encoder's input embedding, Dropout(E·√d_model + PE), before the first layer), scored per source
token as |gradient × input| summed over d_model (``evaluation/alignment_scores.gradient_x_input`` says why). One
backward per target position and batch: sentences of a batch do not interact, so the gradient of the batch's sum of
log p(y_t) is, row by row, each sentence's own. Every score matrix becomes links as ``--print-alignment`` makes them
(``evaluation/alignment_scores.hard_links``) and is scored by AER against the reference links. Dropout is off.

Batches follow the dataset's ``ordered_indices`` (by length, as fairseq-generate; no shuffling), so a batch's
target length, and with it the number of backward passes, is close to its sentences' own.
"""

from typing import Dict, List, Set

import torch

from ..evaluation.alignment import Link, parse_links
from ..evaluation.alignment_scores import batch_hard_links, gradient_norm, gradient_x_input, summarise
from ..text.io import PipelineError, read_lines


def read_reference(path: str) -> List[Set[Link]]:
    """One set of "i-j" links per line of ``path``."""
    return [parse_links(line, f"{path}:{n}: ") for n, line in enumerate(read_lines(path, allow_empty_file=True), 1)]


def load(path: str, bin_dir: str):
    """The model (eval mode, parameters frozen) and its translation task, with ``bin_dir`` as the data."""
    from fairseq import checkpoint_utils

    from .. import register

    register()  # the models, the safe loader
    # the alignment model was trained on bin-align (load_alignments); teacher forcing needs the sentences only
    overrides = {"data": bin_dir, "load_alignments": False}
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides)
    model = models[0].eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, cfg, task


SALIENCY = ("gradient_x_input", "gradient_norm")  # the first is the gradient alignment; the second reads the same


def probe_batch(model, sample, pad: int, eos: int):
    """One batch → (per layer, per head: B link sets), (per layer, heads averaged: B link sets), and per saliency
    of :data:`SALIENCY` the gradient alignment's B link sets."""
    captured = {}

    def keep(_module, _inputs, output):  # the source embeddings become the leaf the gradients are taken against
        captured["x"] = output.detach().requires_grad_(True)  # (B, S, d_model)
        return captured["x"]

    net = sample["net_input"]
    src, prev, target = net["src_tokens"], net["prev_output_tokens"], sample["target"]  # (B, S), (B, T), (B, T)
    handle = model.encoder.input_embedding.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            encoder_out = model.encoder(src, src_lengths=net["src_lengths"])
            logits, extra = model.decoder(prev, encoder_out, return_all_attention=True)  # (B, T, V)
    finally:
        handle.remove()
    cross = [w.detach().float() for w in extra["cross_attention"]]  # N × (B, h, T, S)
    by_head = [[batch_hard_links(w[:, k], src, target, pad, eos) for k in range(w.size(1))] for w in cross]
    by_mean = [batch_hard_links(w.mean(dim=1), src, target, pad, eos) for w in cross]  # (B, T, S) per layer

    lprobs = model.get_normalized_probs((logits, extra), log_probs=True)  # (B, T, V)
    token_lp = lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T): log p(y_t)
    wanted = target.ne(pad) & target.ne(eos)  # (B, T): the target tokens that get a link
    x = captured["x"]
    saliency = {name: torch.zeros(target.size(0), target.size(1), src.size(1)) for name in SALIENCY}  # (B, T, S)
    last = int(wanted.any(dim=0).nonzero().max()) if wanted.any() else -1
    for t in range(last + 1):
        if not wanted[:, t].any():
            continue
        objective = token_lp[:, t].masked_select(wanted[:, t]).sum()
        (grad,) = torch.autograd.grad(objective, x, retain_graph=t < last)  # (B, S, d_model)
        saliency["gradient_x_input"][:, t] = gradient_x_input(grad, x.detach())  # (B, S)
        saliency["gradient_norm"][:, t] = gradient_norm(grad)  # (B, S)
    gradient = {name: batch_hard_links(s, src, target, pad, eos) for name, s in saliency.items()}
    return by_head, by_mean, gradient


def probe(path: str, bin_dir: str, reference: str, split: str = "valid", batch_size: int = 32) -> Dict:
    """AER of every decoder layer's cross-attention (each head; heads averaged; the best head) and of the gradient
    alignment on ``split``'s reference translations, against ``reference`` (one line of links per sentence)."""
    model, cfg, task = load(path, bin_dir)
    ref = read_reference(reference)
    task.load_dataset(split)
    dataset = task.dataset(split)
    if len(dataset) != len(ref):
        raise PipelineError(f"{reference}: {len(ref)} alignment lines for {len(dataset)} sentences of {split}")
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    if (task.source_dictionary.pad(), task.source_dictionary.eos()) != (pad, eos):
        raise ValueError("source and target dictionaries disagree on <pad>/</s>")
    order = dataset.ordered_indices().tolist()  # by length; no shuffling
    n_layers = len(model.decoder.layers)
    by_head: List[List[Dict[int, Set[Link]]]] = []
    by_mean: List[Dict[int, Set[Link]]] = [{} for _ in range(n_layers)]
    gradient: Dict[str, Dict[int, Set[Link]]] = {name: {} for name in SALIENCY}
    for start in range(0, len(order), batch_size):
        sample = dataset.collater([dataset[i] for i in order[start : start + batch_size]])
        heads, means, grads = probe_batch(model, sample, pad, eos)
        if not by_head:
            by_head = [[{} for _ in layer] for layer in heads]
        ids = sample["id"].tolist()
        for n, layer in enumerate(heads):
            for k, links in enumerate(layer):
                by_head[n][k].update(zip(ids, links))
            by_mean[n].update(zip(ids, means[n]))
        for name, links in grads.items():
            gradient[name].update(zip(ids, links))
    probed = len(gradient[SALIENCY[0]])
    if sorted(gradient[SALIENCY[0]]) != list(range(len(ref))):
        raise RuntimeError(f"{split}: {probed} of {len(ref)} sentences were probed")

    def in_order(links: Dict[int, Set[Link]]) -> List[Set[Link]]:
        return [links[i] for i in range(len(ref))]

    table = summarise(
        [[in_order(h) for h in layer] for layer in by_head],
        [in_order(m) for m in by_mean],
        {name: in_order(links) for name, links in gradient.items()},
        ref,
    )
    m = cfg.model
    return {
        "checkpoint": path,
        "arch": getattr(m, "arch", None) or getattr(m, "_name", None),
        "alignment_layer": getattr(m, "alignment_layer", None),
        "alignment_heads": getattr(m, "alignment_heads", None),
        "split": split,
        "sentences": len(ref),
        **table,
    }


def markdown(result: Dict) -> str:
    """The probe's result as Markdown: one row per decoder layer, then the gradient alignment and the agreement."""
    heads = len(result["aer_by_layer_and_head"][0])
    lines = [
        "| layer | heads averaged | best head (AER) | " + " | ".join(f"head {k}" for k in range(heads)) + " |",
        "| ---: | ---: | ---: | " + " | ".join("---:" for _ in range(heads)) + " |",
    ]
    for n, row in enumerate(result["aer_by_layer_and_head"]):
        best = result["best_head"][n]
        cells = " | ".join(f"{x:.3f}" for x in row)
        lines.append(f"| {n} | {result['aer_head_average'][n]:.3f} | {best['head']} ({best['aer']:.3f}) | {cells} |")
    top, mean_layer = result["best_head_overall"], result["best_head_average_layer"]
    lines += [
        "",
        f"| gradient alignment | AER | precision | recall | same source as the best head (layer {top['layer']}, "
        f"head {top['head']}) | same source as layer {mean_layer}'s head average |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, g in result["gradient"].items():
        vs = result["gradient_vs_attention"][name]
        lines.append(
            f"| {name} | {g['aer']:.3f} | {g['precision']:.3f} | {g['recall']:.3f} | "
            f"{vs['same_source_as_best_head']:.3f} | {vs['same_source_as_best_head_average']:.3f} |"
        )
    return "\n".join(lines)
