"""fairseq-vanilla: a from-scratch, paper-faithful Transformer for fairseq's ``--user-dir``.

Importing the package registers the model, its architectures, the criteria, the tasks and the ``noam`` LR scheduler,
and installs the repairs of fairseq 0.12 in :mod:`.fairseq_fixes` (one module per defect: safe checkpoint loading,
atomic checkpoint copies, no example lost, exact resume, ``--replace-unk``, …; README's Reliability section lists
them). Everything else extends fairseq through its registries.

One exception: ``python -m fairseq_vanilla COMMAND`` (the text steps the pipeline scripts call, :mod:`.__main__`)
needs neither torch nor fairseq, so there the package skips :func:`register` and a command starts in 0.3 s
instead of 6.4 (BENCHMARKS.md).
"""

import sys
from typing import Optional


def register() -> None:
    """Register every model, criterion, task, scheduler and tokenizer with fairseq; install the repairs (idempotent)."""
    from . import criterions, fairseq_fixes, lr_scheduler, models, tasks, tokenizers  # noqa: F401  (registers)

    fairseq_fixes.install_all()


def module_being_run() -> Optional[str]:
    """``MODULE`` while ``python -m MODULE`` imports it to find its ``__main__``, else None.

    Python sets ``sys.argv[0]`` to ``"-m"`` while it locates the module; ``sys.orig_argv`` keeps the module's name.
    """
    if sys.argv[:1] != ["-m"]:
        return None
    for i, option in enumerate(sys.orig_argv[1:], start=1):
        if option == "-m":
            return sys.orig_argv[i + 1] if i + 1 < len(sys.orig_argv) else None
        if option.startswith("-m"):
            return option[2:]
    return None


if module_being_run() != __name__:
    register()
    from .models import VanillaTransformerClassifier, VanillaTransformerModel  # noqa: F401, E402
