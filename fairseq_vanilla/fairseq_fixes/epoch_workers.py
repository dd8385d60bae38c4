"""DataLoader workers see the current epoch: ``dataset.set_epoch`` reaches them in every epoch, not only the first.

fairseq 0.12 keeps one ``DataLoader`` per epoch iterator (``reuse_dataloader``) with ``persistent_workers=True``
whenever ``--num-workers`` > 0. The workers are started once and hold their own copy of the dataset, taken when
they start; ``EpochBatchIterator.next_epoch_itr`` then calls ``dataset.set_epoch(epoch)`` in the main process only.
A dataset whose items depend on the epoch (the IMDB task's on-the-fly augmentation, seeded by seed, epoch and
review) therefore gives epoch 1's items in every epoch of an uninterrupted run, and epoch E's in every epoch of a
run resumed in epoch E: other data than ``--num-workers 0`` gives, and no exact resume. Measured on the IMDB task
(``--random-deletion 0.1 --random-swap 0.1``): ``--num-workers 1`` and ``0`` agree for the 7 updates of epoch 1 and
differ from update 8 on; resumed in epoch 3, the run differs from its first update (3.7e-2 in the parameters).

Here, for a dataset that listens to the epoch (it overrides ``set_epoch``), the iterator of a new epoch starts new
workers, which copy the dataset as it is after ``set_epoch``. Datasets that ignore the epoch keep their workers.
"""

from .patching import replace, upstream

DEFECT = (
    "persistent DataLoader workers keep the dataset copy of the epoch they started in: set_epoch never reaches "
    "them, so epoch-dependent items (on-the-fly augmentation) repeat and a resumed run gets other data"
)
UPSTREAM = (
    "fairseq/data/iterators.py EpochBatchIterator._get_iterator_for_epoch: reuse_dataloader with "
    "persistent_workers; next_epoch_itr calls dataset.set_epoch in the main process only"
)
CHECKED_AGAINST = "0.12.3.1"

WORKERS_EPOCH = "fairseq_vanilla_workers_epoch"  # the epoch whose dataset copy the current workers hold


def listens_to_epoch(dataset) -> bool:
    """Whether the dataset's items may depend on the epoch: it overrides fairseq's no-op ``set_epoch``."""
    from fairseq.data.fairseq_dataset import EpochListening

    return getattr(type(dataset), "set_epoch", EpochListening.set_epoch) is not EpochListening.set_epoch


def get_iterator_for_epoch(self, epoch, shuffle, fix_batches_to_gpus=False, offset=0):
    """``EpochBatchIterator._get_iterator_for_epoch``, with new workers when the epoch changed under them."""
    from fairseq.data.iterators import EpochBatchIterator

    if (
        self.dataloader is not None
        and self.num_workers > 0
        and getattr(self, WORKERS_EPOCH, epoch) != epoch
        and listens_to_epoch(self.dataset)
    ):
        self.dataloader = None  # its workers hold the dataset of an earlier epoch: let upstream build a new one
    iterator = upstream(EpochBatchIterator, "_get_iterator_for_epoch")(
        self, epoch, shuffle, fix_batches_to_gpus, offset
    )
    setattr(self, WORKERS_EPOCH, epoch)
    return iterator


def install() -> None:
    """Wrap ``EpochBatchIterator._get_iterator_for_epoch`` (idempotent)."""
    from fairseq.data.iterators import EpochBatchIterator

    replace(EpochBatchIterator, "_get_iterator_for_epoch", get_iterator_for_epoch)
