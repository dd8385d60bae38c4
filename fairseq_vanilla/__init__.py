"""fairseq-vanilla: a from-scratch, paper-faithful Transformer for fairseq's ``--user-dir``.

:func:`register` registers the models, their architectures, the criteria, the tasks, the tokenizers and the
``noam`` LR scheduler with fairseq, and installs the repairs of fairseq 0.12 in :mod:`.fairseq_fixes` (one module
per defect: safe checkpoint loading, atomic checkpoint copies, no example lost, exact resume, ``--replace-unk``, …;
README's Reliability section lists them). It is idempotent. Everything else extends fairseq through its registries.

How fairseq finds the registrations: ``--user-dir PATH/fairseq_vanilla`` (``fairseq-train``, ``fairseq-generate``,
``fairseq-hydra-train``'s ``common.user_dir``, …) makes ``fairseq.utils.import_user_module`` import this package,
with fairseq already loaded, and then every module of its ``tasks/`` and ``models/`` folders. Imported while
fairseq is loaded, the package calls :func:`register` at once (it costs our own modules only: torch and fairseq are
there already). fairseq imports a user directory only if no module of that name is loaded yet, so a program that
imported part of this package first and hands our names to fairseq later calls :func:`register` itself, as the
package's own loaders (:mod:`.inference.hub`, :mod:`.explain`, the table's FLOPs count) do.

Imported without fairseq, the package imports nothing: any submodule that needs neither torch nor fairseq (the text
steps of ``python -m fairseq_vanilla``, :mod:`.evaluation`, the training-precision choice) loads in a fraction of a
second (BENCHMARKS.md), and the Hydra plugin can import the objective repair by its name.
"""

import sys

MODEL_CLASSES = ("VanillaTransformerModel", "VanillaTransformerClassifier")  # ``from fairseq_vanilla import …``


def register() -> None:
    """Register every model, criterion, task, scheduler and tokenizer with fairseq; install the repairs (idempotent:
    fairseq's registries are filled when a module is first imported, and each repair installs once)."""
    from . import criterions, fairseq_fixes, lr_scheduler, models, tasks, tokenizers  # noqa: F401  (registers)

    fairseq_fixes.install_all()


def __getattr__(name: str):
    """``from fairseq_vanilla import VanillaTransformerModel``: registered first, so ``from_pretrained`` works."""
    if name not in MODEL_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    register()
    from . import models

    return getattr(models, name)


if "fairseq" in sys.modules:  # imported by fairseq's --user-dir (or after fairseq in any program)
    register()
