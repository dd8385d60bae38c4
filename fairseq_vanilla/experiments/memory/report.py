"""The memory planner's answer for ``scripts/fit-memory.py``: facts of the binarised data, a calibration, a table
of plans or one plan (measured on the GPU with ``--measure``)."""

import dataclasses
import glob
import os
import re
from typing import Optional, Tuple

import numpy as np
import torch

from .measure import calibrate, estimated_activations, largest_fitting_tokens, measure_peak
from .output_layer import chunk_tokens
from .planner import SAFETY_BYTES, SAFETY_FRACTION, GiB, Plan, parameter_count, usable_bytes


def data_facts(data: str, max_tokens: int) -> Tuple[int, float]:
    """(vocabulary size, real target tokens per batch / --max-tokens) of a fairseq-preprocess folder's training split,
    batched as fairseq-train batches it (sorted by source then target length, ``batch_by_size``)."""
    from fairseq.data import Dictionary, data_utils

    found = sorted(glob.glob(os.path.join(data, "train.*-*.*.idx")))
    if not found:
        raise ValueError(f"{data}: no train.SRC-TGT.LANG.idx there (run fairseq-preprocess or a prepare script)")
    pair = os.path.basename(found[0]).split(".")[1]
    src, tgt = pair.split("-")
    dict_path = os.path.join(data, f"dict.{tgt}.txt")
    if not os.path.isfile(dict_path):
        raise ValueError(f"{dict_path}: missing (the target dictionary of {data})")
    sizes = {}
    for lang in (src, tgt):
        dataset = data_utils.load_indexed_dataset(os.path.join(data, f"train.{pair}.{lang}"), None)
        if dataset is None:
            raise ValueError(f"{data}: cannot read train.{pair}.{lang}.bin/.idx")
        sizes[lang] = np.asarray(dataset.sizes, dtype=np.int64)
    order = np.lexsort((sizes[tgt], sizes[src]))  # by source length, ties by target length
    num_tokens = np.maximum(sizes[src], sizes[tgt])
    keep = order[num_tokens[order] <= max_tokens]
    batches = data_utils.batch_by_size(keep, None, num_tokens_vec=num_tokens[keep], max_tokens=max_tokens)
    target_per_batch = sizes[tgt][keep].sum() / max(1, len(batches))
    return len(Dictionary.load(dict_path)), float(target_per_batch / max_tokens)


def report(args) -> str:
    """The planner's answer for parsed ``scripts/fit-memory.py`` flags: a calibration, a table, or one plan (measured
    on the GPU with ``--measure``; ``--check-tokens N`` adds one measured step on this machine against the model)."""
    from .planner import PLANNER_FLAGS, plan, size_from_arch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.calibrate:
        lines = []
        for precision in ("fp32", "fp16"):
            scales, points = calibrate(precision, device)
            fitted = ", ".join(f"{k} {v:.4f}" for k, v in scales.items())
            lines.append(f"{precision} on {device}: fitted scales {fitted}")
            lines += [
                f"  d_model {s.d_model:4d} d_ff {s.d_ff:4d} h {s.h} N {s.N_enc}+{s.N_dec} V {s.vocab:5d} dropout "
                f"{s.dropout}: measured {m / 2**20:7.2f} MiB, estimated {e / 2**20:7.2f} MiB ({e / m - 1:+.2%})"
                for s, m, e in points
            ]
        return "\n".join(lines)
    vocab = args.vocab
    if args.data:
        vocab, _ = data_facts(args.data, 4096)
    flags = {name: getattr(args, name) for name in PLANNER_FLAGS}
    size = size_from_arch(args.arch, vocab, not args.no_share_all_embeddings, **flags)
    chunked = getattr(args, "chunked_loss", "auto") != "off"
    size = dataclasses.replace(size, chunked_loss=chunked, loss_chunk_tokens=getattr(args, "loss_chunk_tokens", 0))
    common = dict(gpus=args.gpus, tokens_per_update=args.tokens_per_update)

    def planned(memory: float, precision: str, fit: Optional[int] = None, flag: str = "--memory"):
        try:
            p = plan(size, precision, memory, fill=args.fill or 0.9, max_tokens_fit=fit, **common)
            for _ in range(3 if args.data and not args.fill else 0):  # the fill of batches of these flags, again
                fill = data_facts(args.data, p.max_tokens)[1]
                p = plan(size, precision, memory, fill=fill, max_tokens_fit=fit, **common)
        except ValueError as e:
            raise ValueError(f"{flag}: {e}") from None
        return p

    if args.table:
        lines = [
            "| GPU memory | precision | largest --max-tokens | flags for ≈25k target tokens/update | estimated peak |",
            "| --- | --- | --- | --- | --- |",
        ]
        for memory in args.table.split(","):
            for precision in ("fp32", "fp16"):
                p = planned(parse_memory(memory), precision, flag=f"--table {memory}")
                lines.append(
                    f"| {memory} | {precision} | {p.max_tokens_fit:,} | `--max-tokens {p.max_tokens} "
                    f"--update-freq {p.update_freq}` | {p.peak_bytes / GiB:.1f} GiB |"
                )
        return "\n".join(lines)
    if args.memory is None:
        raise ValueError("--memory is required (e.g. --memory 15GB), or --table / --calibrate")
    memory = parse_memory(args.memory)
    lines = []
    fit = None
    if args.measure:
        if device != "cuda":
            raise ValueError("--measure needs a CUDA GPU (torch.cuda.is_available() is False here)")
        fit, probes = largest_fitting_tokens(size, args.precision, memory)
        lines.append(
            f"measured on {torch.cuda.get_device_name()}: forward + backward peaks above weights and "
            "gradients (tokens: measured / estimated)"
        )
        lines += [
            f"  {n:6d}: " + (f"{m / GiB:.3f} / {e / GiB:.3f} GiB ({e / m - 1:+.1%})" if m else "out of memory")
            for n, m, e in probes
        ]
    chosen = planned(memory, args.precision, fit, flag=f"--memory {args.memory}")
    if getattr(args, "flags_only", False):
        return f"--max-tokens {chosen.max_tokens} --update-freq {chosen.update_freq}"
    lines.append(format_plan(chosen))
    if args.check_tokens:
        measured = measure_peak(size, args.precision, args.check_tokens, device)
        estimated = estimated_activations(size, args.precision, args.check_tokens, device)
        lines.append(
            f"check on {device}, {args.check_tokens} tokens: activations measured {measured / GiB:.3f} GiB, "
            f"estimated {estimated / GiB:.3f} GiB ({estimated / measured - 1:+.2%})"
        )
    return "\n".join(lines)


def parse_memory(text: str) -> float:
    """'15GB' (10⁹ bytes), '14.74GiB' (2³⁰), '16000MiB', '15' (GiB) → bytes."""
    units = {"gib": GiB, "gb": 1e9, "mib": 2**20, "mb": 1e6, "": GiB}
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", text.lower())
    if not match or match.group(2) not in units:
        raise ValueError(f"--memory {text!r}: a size such as 15GB, 14.74GiB or 16000MiB")
    return float(match.group(1)) * units[match.group(2)]


def format_plan(p: Plan) -> str:
    """The flags, then the breakdown in GiB."""
    gb = lambda b: f"{b / GiB:7.2f} GiB"  # noqa: E731
    flag = {"fp32": "", "fp16": " --fp16", "bf16": " --bf16"}.get(p.precision, " --" + p.precision)
    lines = [
        f"budget {p.memory_bytes / GiB:.2f} GiB, safety margin {SAFETY_FRACTION:.0%} + "
        f"{SAFETY_BYTES / GiB:.0f} GiB → usable {usable_bytes(p.memory_bytes) / GiB:.2f} GiB; "
        f"{parameter_count(p.size):,} parameters, {p.precision}",
        f"largest --max-tokens that fits: {p.max_tokens_fit}",
        f"flags: --max-tokens {p.max_tokens} --update-freq {p.update_freq}{flag}   (≈{p.tokens_per_update:,.0f} "
        f"target tokens per update over {p.gpus} GPU(s), assuming {p.fill:.0%} of --max-tokens are real tokens)",
        "breakdown at these flags:",
    ]
    lines += [f"  {name:32s}{gb(b)}" for name, b in p.static.items()]
    lines += [
        f"  {'activations: ' + name:32s}{gb(b * p.max_tokens)}   ({b / 1024:.1f} KiB/token)"
        for name, b in p.per_token.items()
    ]
    lines.append(f"  {'total (estimated peak)':32s}{gb(p.peak_bytes)}")
    if p.size.chunked_loss:
        C = min(chunk_tokens(p.size.vocab, p.size.loss_chunk_tokens), p.max_tokens)
        what, rows = "one chunk's fp32 logits (the chunked loss; --chunked-loss off: all tokens')", C
    else:
        what, rows = "an fp32 B·T·V tensor of the output layer (the criterion's log-probabilities)", p.max_tokens
    lines.append(
        f"largest single allocation: {what}, {rows}·{p.size.vocab} floats = {gb(4 * rows * p.size.vocab).strip()}"
    )
    return "\n".join(lines)
