"""A run resumed mid-training gets the same batches as the uninterrupted run: batch composition does not depend on
the epoch in which the process started.

``FairseqTask.get_batch_iterator`` builds the batches under ``numpy_seed(seed + epoch)`` (the seed breaks the ties of
the size sort, so it decides which examples share a batch), and, for a dataset whose iterator can be reused across
epochs (the default, ``can_reuse_epoch_itr_across_epochs``), builds them once per process and reuses them for every
later epoch. An uninterrupted run therefore trains every epoch on the batches of epoch 1; a run restarted from a
checkpoint in epoch E builds them with ``seed + E``: other batches, and training drifts from the first update after
the restart (measured on the tiny model: 1.7e-2 in the parameters after 20 updates, dropout 0.1), although fairseq
restores the parameters, the optimizer, the scheduler, the iterator's position and reseeds every update
(``seed + num_updates``). Here an iterator that will be reused across epochs is always built as the first epoch's
(``epoch=1``) and then moved to the epoch asked for; iterators that are rebuilt every epoch (``rebuild_batches``,
datasets that cannot reuse them) are unchanged, since they already depend on the epoch only.

Not covered: ``--update-ordered-indices-seed`` (off by default) adds the start epoch to the iterator's seed in the
trainer itself, so a resumed run still shuffles differently with it.
"""

import inspect

from .patching import replace, upstream

DEFECT = (
    "the batches of a reusable epoch iterator are built with numpy_seed(seed + start epoch): a run resumed in "
    "epoch E trains on other batches than the uninterrupted run"
)
UPSTREAM = "fairseq/tasks/fairseq_task.py get_batch_iterator make_batches: numpy_seed(seed + epoch)"
CHECKED_AGAINST = "0.12.3.1"


def get_batch_iterator(self, dataset, *args, **kwargs):
    """``FairseqTask.get_batch_iterator``; a new iterator that will be reused across epochs gets epoch 1's batches."""
    from fairseq.tasks import FairseqTask

    original = upstream(FairseqTask, "get_batch_iterator")
    call = inspect.signature(original).bind(self, dataset, *args, **kwargs)
    call.apply_defaults()
    options = call.arguments
    epoch = options["epoch"]
    reusable = (
        not options["disable_iterator_cache"]
        and not options["update_epoch_batch_itr"]
        and self.can_reuse_epoch_itr(dataset)
        and not getattr(self.cfg, "rebuild_batches", False)
    )
    if epoch == 1 or not reusable or dataset in self.dataset_to_epoch_iter:
        return original(**options)
    options["epoch"] = 1
    iterator = original(**options)  # batches under numpy_seed(seed + 1), as in a run that started at epoch 1
    iterator.epoch = max(epoch, 1)  # per-epoch shuffling and next_epoch_idx follow the real epoch
    dataset.set_epoch(epoch)
    return iterator


def install() -> None:
    """Wrap ``FairseqTask.get_batch_iterator`` (idempotent)."""
    from fairseq.tasks import FairseqTask

    replace(FairseqTask, "get_batch_iterator", get_batch_iterator)
