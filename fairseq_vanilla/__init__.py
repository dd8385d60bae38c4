"""fairseq-vanilla: a from-scratch, paper-faithful Transformer for fairseq's ``--user-dir``.

Importing the package registers the model, its architectures, the criteria and the ``noam`` LR scheduler,
makes fairseq load checkpoints with torch's ``weights_only`` unpickler (see :mod:`.checkpoint_safety`), write
every checkpoint file atomically (see :mod:`.atomic_checkpoints`) and
keeps every example of every split (see :mod:`.no_sentence_lost`) and makes ``--replace-unk`` work
(see :mod:`.replace_unk`).
"""
from . import atomic_checkpoints, checkpoint_safety, no_sentence_lost, replace_unk  # noqa: F401  (patches first)
from . import criterions, lr_scheduler, models, tasks, tokenizers  # noqa: F401  (registers)
from .models import VanillaTransformerClassifier, VanillaTransformerModel  # noqa: F401

checkpoint_safety.install()
atomic_checkpoints.install()
no_sentence_lost.install()
replace_unk.install()
