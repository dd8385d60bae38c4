"""``--bf16`` trains where it is asked to (a CUDA GPU, the CPU): the TPU only when ``--tpu`` is on the command line.

fairseq 0.12's ``options.parse_args_and_arch`` ends with ``if args.bf16: args.tpu = True`` (``--memory-efficient-bf16``
implies ``--bf16``, so it too), a leftover from the days when only TPUs had bfloat16. On an A100/H100 or a CPU the
``Trainer`` then asks ``torch_xla`` for a device and stops (``'NoneType' object has no attribute 'xla_device'``).
Everything else of fairseq's bf16 path already works without a TPU: the ``Trainer`` casts model and criterion to
``torch.bfloat16`` and converts each sample's floats, ``FP16Optimizer`` (``MemoryEfficientFP16Optimizer`` for
``--memory-efficient-bf16``) keeps fp32 master weights without flattening them and without loss scaling, and
checkpoints are written through ``utils.move_to_cpu``, which stores fp32.

The repair wraps ``fairseq.distributed.utils.call_main``, through which ``fairseq-train`` and ``fairseq-validate``
hand their configuration to ``main`` after the command line was parsed (the plugin is imported during that parse, too
late to change it): when ``common.bf16`` is set and the command line did not say ``--tpu``, ``common.tpu`` is reset to
``False``. ``fairseq-hydra-train`` never implied the TPU and is unaffected.
"""

import sys
from typing import Optional, Sequence

from .patching import replace, upstream

DEFECT = "--bf16 (and --memory-efficient-bf16) sets --tpu, so bf16 cannot train on a CUDA GPU or the CPU"
UPSTREAM = (
    "fairseq/options.py parse_args_and_arch: `if args.bf16: args.tpu = True`; "
    "https://github.com/facebookresearch/fairseq/issues/4696 (bf16 with A100 GPUs, open)"
)
CHECKED_AGAINST = "0.12.3.1"


def tpu_implied_only(common, argv: Optional[Sequence[str]] = None) -> bool:
    """True when ``common.tpu`` is set only because of ``--bf16``: bf16 is on and ``--tpu`` is not in ``argv``."""
    argv = sys.argv[1:] if argv is None else argv
    return bool(getattr(common, "bf16", False) and getattr(common, "tpu", False) and "--tpu" not in argv)


def untie_tpu_from_bf16(cfg, argv: Optional[Sequence[str]] = None) -> None:
    """Reset ``cfg.common.tpu`` when only ``--bf16`` set it (in place)."""
    if tpu_implied_only(cfg.common, argv):
        cfg.common.tpu = False


def bf16_without_tpu_call_main(cfg, main, **kwargs):
    """fairseq's ``call_main`` after :func:`untie_tpu_from_bf16`."""
    from fairseq.distributed import utils as distributed_utils

    untie_tpu_from_bf16(cfg)
    return upstream(distributed_utils, "call_main")(cfg, main, **kwargs)


def install() -> None:
    """Wrap ``fairseq.distributed.utils.call_main`` (idempotent; upstream's is kept on fairseq's module)."""
    from fairseq.distributed import utils as distributed_utils

    replace(distributed_utils, "call_main", bf16_without_tpu_call_main)
