"""fairseq-vanilla: a from-scratch, paper-faithful Transformer for fairseq's ``--user-dir``.

Importing the package registers the model, its architectures, the criteria, the tasks and the ``noam`` LR scheduler,
and installs the repairs of fairseq 0.12 in :mod:`.fairseq_fixes` (one module per defect: safe checkpoint loading,
atomic checkpoint copies, no example lost, exact resume, ``--replace-unk``, …; README's Reliability section lists
them). Everything else extends fairseq through its registries.
"""

from . import criterions, fairseq_fixes, lr_scheduler, models, tasks, tokenizers  # noqa: F401  (registers)
from .models import VanillaTransformerClassifier, VanillaTransformerModel  # noqa: F401

fairseq_fixes.install_all()
