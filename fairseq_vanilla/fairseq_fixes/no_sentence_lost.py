"""No example is lost: every batch keeps its tail, and an example too long for the model is skipped only on request.

Upstream defect 1 (``fairseq.data.data_utils.batch_by_size``): after bucketing, it does
``if bsz_mult > 1 and len(b[-1]) % bsz_mult != 0: b = b[:-1]``, so whenever the last batch's size is not a multiple of
``--required-batch-size-multiple`` (default 8) those examples vanish: from training epochs, from validation and from
``fairseq-generate``/``fairseq-interactive`` output. In size-sorted order they are the longest sentences. Seen: 456
hypotheses for a 461-sentence test set. Our ``batch_by_size`` keeps the multiple for every batch but the last, and
keeps the last batch whatever its size. Every caller reaches it through the module attribute
(``FairseqDataset.batch_by_size``), so every task and every command gets the fix.

Upstream defect 2 (``FairseqTask.filter_indices_by_size``): ``fairseq-train`` skips every training example longer
than the model's max positions with only a warning (the trainer always passes ``ignore_invalid_inputs=True``). Here
an example too long for the model stops the command with :class:`ExampleTooLongError` (one line naming how many,
which and the flags), for every split, unless the user asked for skipping with
``--skip-invalid-size-inputs-valid-test``: then, for training as for validation and generation, the examples are
skipped and the count and ids are logged.
"""

import logging

import numpy as np

from .errors import OneLineError
from .patching import replace, upstream

DEFECT = (
    "batch_by_size drops the last batch when its size is not a multiple of --required-batch-size-multiple; "
    "fairseq-train skips too-long examples even without --skip-invalid-size-inputs-valid-test"
)
UPSTREAM = (
    "fairseq/data/data_utils.py batch_by_size `b = b[:-1]`; fairseq/trainer.py get_train_iterator "
    "ignore_invalid_inputs=True"
)
CHECKED_AGAINST = "0.12.3.1"

logger = logging.getLogger(__name__)
SHOWN_IDS = 100  # ids listed in the skip message; the count is always complete
SKIP_FLAG_ATTR = "fairseq_vanilla_skip_invalid_size"  # set on the task by the trainer's train iterator


def batch_by_size(
    indices,
    num_tokens_fn,
    num_tokens_vec=None,
    max_tokens=None,
    max_sentences=None,
    required_batch_size_multiple=1,
    fixed_shapes=None,
):
    """fairseq's ``data_utils.batch_by_size`` without the final ``b = b[:-1]``: no example is dropped."""
    from fairseq.data import data_utils
    from fairseq.data.data_utils_fast import batch_by_size_fn, batch_by_size_vec

    if fixed_shapes is not None:  # upstream's fixed-shape path drops nothing
        return upstream(data_utils, "batch_by_size")(
            indices,
            num_tokens_fn,
            num_tokens_vec,
            max_tokens,
            max_sentences,
            required_batch_size_multiple,
            fixed_shapes,
        )
    max_tokens = int(max_tokens) if max_tokens is not None else -1
    max_sentences = max_sentences if max_sentences is not None else -1
    if not isinstance(indices, np.ndarray):
        indices = np.fromiter(indices, dtype=np.int64, count=-1)
    if num_tokens_vec is not None and not isinstance(num_tokens_vec, np.ndarray):
        num_tokens_vec = np.fromiter(num_tokens_vec, dtype=np.int64, count=-1)
    if num_tokens_vec is None:
        batches = batch_by_size_fn(indices, num_tokens_fn, max_tokens, max_sentences, required_batch_size_multiple)
    else:
        batches = batch_by_size_vec(indices, num_tokens_vec, max_tokens, max_sentences, required_batch_size_multiple)
    return [b for b in batches if len(b) > 0]


class ExampleTooLongError(OneLineError, ValueError):
    """Examples longer than the model's max positions; the message names them and the flags to change."""


def _size(dataset, index: int):
    size = dataset.size(index)
    return tuple(int(x) for x in size) if isinstance(size, (tuple, list, np.ndarray)) else int(size)


def filter_indices_by_size(self, indices, dataset, max_positions=None, ignore_invalid_inputs=False):
    """``FairseqTask.filter_indices_by_size``: too long is an error unless ``--skip-invalid-size-inputs-valid-test``."""
    kept, ignored = dataset.filter_indices_by_size(indices, max_positions)
    if len(ignored) == 0:
        return kept
    ids = [int(i) for i in ignored]
    skip = ignore_invalid_inputs and getattr(self, SKIP_FLAG_ATTR, True)
    if not skip:
        raise ExampleTooLongError(
            f"{len(ids):,} example(s) longer than the model accepts (max_positions={max_positions}), e.g. "
            f"example {ids[0]} of size {_size(dataset, ids[0])}; ids {ids[:10]}: skip this example with "
            f"--skip-invalid-size-inputs-valid-test (fairseq's own hint; fairseq-vanilla never skips examples "
            f"silently), raise --max-source-positions/--max-target-positions (or the task's --max-positions), or "
            f"drop long pairs before binarising (scripts/prepare-wmt16-en-de.sh's clean stage does; the other "
            f"prepare scripts count them in their log)"
        )
    more = f" (and {len(ids) - SHOWN_IDS:,} more)" if len(ids) > SHOWN_IDS else ""
    logger.warning(
        f"--skip-invalid-size-inputs-valid-test: skipped {len(ids):,} example(s) longer than "
        f"max_positions={max_positions}: ids {sorted(ids)[:SHOWN_IDS]}{more}"
    )
    return kept


def get_train_iterator(self, *args, **kwargs):
    """``Trainer.get_train_iterator``, telling the task whether the user asked to skip too-long examples."""
    setattr(self.task, SKIP_FLAG_ATTR, bool(self.cfg.dataset.skip_invalid_size_inputs_valid_test))
    from fairseq.trainer import Trainer

    return upstream(Trainer, "get_train_iterator")(self, *args, **kwargs)


def install() -> None:
    """Replace ``data_utils.batch_by_size`` and ``FairseqTask.filter_indices_by_size``, wrap
    ``Trainer.get_train_iterator`` (idempotent)."""
    from fairseq.data import data_utils
    from fairseq.tasks import FairseqTask
    from fairseq.trainer import Trainer

    replace(data_utils, "batch_by_size", batch_by_size)
    replace(FairseqTask, "filter_indices_by_size", filter_indices_by_size)
    replace(Trainer, "get_train_iterator", get_train_iterator)
