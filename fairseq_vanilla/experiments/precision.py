"""Which precision to train in on this machine: ``--precision auto|fp32|bf16`` of ``scripts/train.sh``.

Pure functions over the CPU's flags (``/proc/cpuinfo``, or given) and the committed quality results; no torch
import. ``python -m fairseq_vanilla.experiments.precision train --precision P`` prints the choice for
``scripts/train.sh``: stdout, the fairseq flag (``--bf16`` or nothing); stderr, the choice and why, one line. The
choices and their one error message live here only (:data:`PRECISIONS`, :func:`check_precision`).
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..evaluation import seed_statistics

ROOT = Path(__file__).resolve().parents[2]
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of bf16 dot-product instructions
BF16_EVIDENCE = ROOT / "examples" / "table3" / "results" / "multi30k"  # the fp32 base's three seeds live here
BF16_FLAGS = ("--bf16", "--memory-efficient-bf16")
MIN_BF16_SEEDS = 2
PRECISIONS = ("auto", "fp32", "bf16")  # --precision of scripts/train.sh


def _first_cpu(cpuinfo: str) -> Dict[str, str]:
    """The first value of each ``key: value`` field of ``cpuinfo``, the first CPU's (empty if the file is missing)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return {}
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _flags_of(fields: Dict[str, str]) -> frozenset:
    return frozenset((fields.get("flags") or fields.get("Features") or "").split())


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty where the file is missing or has none)."""
    return _flags_of(_first_cpu(cpuinfo))


SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")  # named beside a speed


def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name and which of :data:`SPEED_FLAGS` it has, e.g. ``AMD EPYC (avx2; no avx512f, …)``."""
    fields = _first_cpu(cpuinfo)
    flags = _flags_of(fields)
    parts = [", ".join(f for f in SPEED_FLAGS if f in flags), ", ".join(f for f in SPEED_FLAGS if f not in flags)]
    parts[1] = "no " + parts[1] if parts[1] else ""
    return f"{fields.get('model name', 'unknown CPU')} ({'; '.join(p for p in parts if p)})"


def has_native_bf16(flags: Iterable[str]) -> bool:
    """True where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX-BF16)."""
    return bool(set(flags) & set(NATIVE_BF16_FLAGS))


def bf16_quality(records: Sequence[dict]) -> Tuple[bool, str]:
    """Whether committed results show bf16 training equal in quality to fp32: ``(equal, why)``.

    ``records``: Table 3 result files (JSON). The fp32 base is the records with id ``base`` and no bf16 flag; a bf16
    base run is a base-recipe record whose ``flags`` hold ``--bf16`` (or ``--memory-efficient-bf16``). Equal means at
    least ``MIN_BF16_SEEDS`` bf16 seeds and dev perplexity and BLEU each "equal" by two one-sided tests
    (:func:`fairseq_vanilla.evaluation.seed_statistics.equivalence`, its stated margins) against the fp32 base's
    seeds: "within seed noise" is not evidence of equality (with 2 against 3 seeds it passes a 2-BLEU loss).
    """
    bf16 = [r for r in records if set(r.get("flags") or ()) & set(BF16_FLAGS)]
    fp32 = [r for r in records if r.get("id") == "base" and r not in bf16]
    if not bf16:
        return False, "no bf16 base run is committed"
    if len(bf16) < MIN_BF16_SEEDS or len(fp32) < 2:
        return False, f"{len(bf16)} bf16 and {len(fp32)} fp32 base seeds (need ≥ {MIN_BF16_SEEDS} and ≥ 2)"
    verdicts = {}
    for figure in ("ppl", "bleu"):
        r = seed_statistics.equivalence(
            [r[figure] for r in fp32], [r[figure] for r in bf16], seed_statistics.MARGINS[figure]
        )
        verdicts[figure] = f"{figure} Δ {r['delta']:+.2f} ({r['verdict']} within ±{r['margin']:g})"
    seeds = f"{len(bf16)} against {len(fp32)} seeds"
    if all("(equal " in v for v in verdicts.values()):
        return True, f"bf16 is equal to fp32 ({seeds}: {', '.join(verdicts.values())})"
    return False, f"bf16 is not shown equal to fp32 ({seeds}: {', '.join(verdicts.values())})"


def load_records(folder: Path) -> List[dict]:
    """The result files (``*.json``) of ``folder``; unreadable ones are skipped."""
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def check_precision(requested: str) -> None:
    """``ValueError`` (one line, the flag named) unless ``requested`` is one of :data:`PRECISIONS`."""
    if requested not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")


def choose_precision(
    requested: str, flags: Iterable[str], quality: Tuple[bool, str], on_gpu: bool = False
) -> Tuple[str, str]:
    """``(precision, why)`` for ``--precision requested``: ``fp32`` or ``bf16`` (one line of reason).

    ``auto``: bf16 only on a CPU with native bf16 and with committed evidence (``quality`` from :func:`bf16_quality`)
    that bf16 trains as well as fp32; fp32 otherwise. On a GPU ``auto`` is fp32 (``--gpu-fp16``/``--gpu-bf16``
    choose half precision there). ``fp32``/``bf16`` are obeyed; bf16 on a CPU without native bf16 gets a warning.
    """
    check_precision(requested)
    native = has_native_bf16(flags)
    equal, evidence = quality
    if requested == "fp32":
        return "fp32", "asked for"
    if requested == "bf16":
        if on_gpu or native:
            return "bf16", "asked for"
        return "bf16", "asked for; warning: this CPU has no native bf16 (avx512_bf16/amx_bf16), expect it slower"
    if on_gpu:
        return "fp32", "on a GPU --precision auto keeps fp32 (--gpu-fp16 or --gpu-bf16 for half precision)"
    if not native:
        return "fp32", "this CPU has no native bf16 (avx512_bf16/amx_bf16)"
    if not equal:
        where = BF16_EVIDENCE.relative_to(ROOT) if BF16_EVIDENCE.is_relative_to(ROOT) else BF16_EVIDENCE
        return (
            "fp32",
            f"this CPU has native bf16, but bf16 training has not yet been shown equal in quality: {where}: {evidence}",
        )
    return "bf16", f"this CPU has native bf16 and {evidence}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    train = sub.add_parser("train", help="the fairseq-train flags for --precision (scripts/train.sh)")
    train.add_argument("--precision", default="auto", help=" | ".join(PRECISIONS))
    train.add_argument("--gpu", action="store_true", help="training runs on a GPU")
    train.add_argument("--cpu-flags", help="space-separated CPU flags instead of /proc/cpuinfo's")
    train.add_argument("--evidence", default=str(BF16_EVIDENCE), help="folder of Table 3 result files")
    a = p.parse_args(argv)
    try:
        check_precision(a.precision)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    flags = a.cpu_flags.split() if a.cpu_flags is not None else cpu_flags()
    precision, why = choose_precision(a.precision, flags, bf16_quality(load_records(Path(a.evidence))), a.gpu)
    print(f"[train] precision: {precision} ({why})", file=sys.stderr)
    print("--bf16" if precision == "bf16" else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
