"""Keep the last batch of every split: fairseq's ``batch_by_size`` silently drops it.

Upstream defect (fairseq 0.12.x, ``fairseq.data.data_utils.batch_by_size``): after bucketing, it does
``if bsz_mult > 1 and len(b[-1]) % bsz_mult != 0: b = b[:-1]``, so whenever the last batch's size is not a
multiple of ``--required-batch-size-multiple`` (default 8) those examples vanish: from training epochs,
from validation and from ``fairseq-generate``/``fairseq-interactive`` output. In size-sorted order they are
the longest sentences. Seen: 456 hypotheses for a 461-sentence test set.

Second place: fairseq-train skips every training example longer than the model's max positions with only a
warning (``FairseqTask.filter_indices_by_size`` is always called with ``ignore_invalid_inputs=True`` for training),
and ``--skip-invalid-size-inputs-valid-test`` does the same to validation and test sets. With the plugin, an example
too long for the model stops the command with :class:`ExampleTooLongError`, naming how many, which, and the flags.

We differ in one place: this replacement of ``data_utils.batch_by_size`` keeps the multiple for every batch
but the last, and keeps the last batch whatever its size. Every caller in fairseq reaches it through the
module attribute (``FairseqDataset.batch_by_size``), so every task and every command gets the fix.
"""
import numpy as np


def batch_by_size(indices, num_tokens_fn, num_tokens_vec=None, max_tokens=None, max_sentences=None,
                  required_batch_size_multiple=1, fixed_shapes=None):
    """fairseq's ``data_utils.batch_by_size`` without the final ``b = b[:-1]``: no example is dropped."""
    from fairseq.data.data_utils_fast import batch_by_size_fn, batch_by_size_vec

    if fixed_shapes is not None:  # upstream's fixed-shape path drops nothing
        return _UPSTREAM(indices, num_tokens_fn, num_tokens_vec, max_tokens, max_sentences,
                         required_batch_size_multiple, fixed_shapes)
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


_UPSTREAM = None


class ExampleTooLongError(ValueError):
    """Examples longer than the model's max positions; the message names them and the flags to change."""


def filter_indices_by_size(self, indices, dataset, max_positions=None, ignore_invalid_inputs=False):
    """``FairseqTask.filter_indices_by_size`` that never drops an example: too long is an error, for every split."""
    kept, ignored = dataset.filter_indices_by_size(indices, max_positions)
    if len(ignored) > 0:
        first = int(ignored[0])
        size = dataset.size(first)
        size = tuple(int(x) for x in size) if isinstance(size, (tuple, list)) else int(size)
        raise ExampleTooLongError(
            f"{len(ignored):,} example(s) longer than the model accepts (max_positions={max_positions}), e.g. "
            f"example {first} of size {size}; ids {[int(i) for i in ignored[:10]]}: raise "
            f"--max-source-positions/--max-target-positions (or the task's --max-positions), or drop long pairs "
            f"before binarising (the prepare scripts' clean stage); fairseq-vanilla never skips examples silently")
    return kept


def install() -> None:
    """Replace ``fairseq.data.data_utils.batch_by_size`` and ``FairseqTask.filter_indices_by_size`` (idempotent)."""
    global _UPSTREAM
    from fairseq.data import data_utils
    from fairseq.tasks import FairseqTask

    FairseqTask.filter_indices_by_size = filter_indices_by_size

    if data_utils.batch_by_size is not batch_by_size:
        _UPSTREAM = data_utils.batch_by_size
        data_utils.batch_by_size = batch_by_size
