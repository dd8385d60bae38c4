"""Repairs of fairseq 0.12 (``fairseq-fixed==0.12.3.1``), one module per defect, installed in one visible call.

Each module states, at module level: ``DEFECT`` (the upstream defect, one line), ``UPSTREAM`` (the upstream issue
or code location), ``CHECKED_AGAINST`` (the fairseq version it was written and tested against) and ``install()``
(idempotent). :func:`install_all` warns once, naming the repair, when the installed fairseq is another version.
"""

import importlib
import warnings

# Order matters only where one repair builds on another; each module says so if it does.
REPAIRS = (
    "checkpoint_safety",
    "atomic_checkpoints",
    "architecture_mismatch",
    "no_sentence_lost",
    "exact_resume",
    "epoch_workers",
    "replace_unk",
    "hydra_objective",
    "bf16",
    "save_dir",
)


def repair_modules():
    """The repair modules, in installation order."""
    return [importlib.import_module(f"{__name__}.{name}") for name in REPAIRS]


def install_all() -> None:
    """Install every repair; warn (one line per repair) if fairseq is not the version it was checked against."""
    import fairseq

    for module in repair_modules():
        if fairseq.__version__ != module.CHECKED_AGAINST:
            warnings.warn(
                f"fairseq-vanilla repair {module.__name__.rsplit('.', 1)[-1]!r} was checked against fairseq "
                f"{module.CHECKED_AGAINST}, this is {fairseq.__version__}: it may not fit ({module.DEFECT})",
                stacklevel=2,
            )
        module.install()
