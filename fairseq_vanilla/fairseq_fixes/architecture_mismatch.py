"""A checkpoint of another architecture (or dictionary) is one line naming the file and what does not fit.

fairseq's ``Trainer.load_checkpoint`` catches the error of ``load_state_dict`` (which lists the missing, unexpected
and mis-sized parameters) and raises a bare ``Exception("Cannot load model parameters from checkpoint …; please
ensure that the architectures match.")`` in its place: a traceback, with the useful part in the chained exception
above it. Here that exception becomes a :class:`CheckpointError` whose one line names the file and the mismatch.
"""

import re

from .checkpoint_safety import CheckpointError
from .patching import replace, upstream

DEFECT = (
    "fairseq-train reports a checkpoint of another architecture as a bare Exception and a traceback, the "
    "parameters that do not fit buried in the chained error"
)
UPSTREAM = "fairseq/trainer.py Trainer.load_checkpoint: raise Exception('Cannot load model parameters from checkpoint')"
CHECKED_AGAINST = "0.12.3.1"

PREFIX = "Cannot load model parameters from checkpoint "
SHOWN = 300  # characters of the mismatch shown
SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) from checkpoint, "
    r"the shape in current model is torch\.Size\(\[([\d, ]*)\]\)"
)
VOCABULARY_PARAMETERS = ("embed_tokens", "output_projection")  # the parameters whose first size is the dictionary's


def dictionary_sizes(cause: str):
    """(symbols in the checkpoint's dictionary, symbols in this one) when the only mismatch is the dictionary's size
    (every mismatched parameter an embedding or the output projection, differing in its first size), else None."""
    if "Missing key" in cause or "Unexpected key" in cause:
        return None
    found = SIZE_MISMATCH.findall(cause)
    if not found:
        return None
    pairs = set()
    for name, saved, current in found:
        saved, current = [int(x) for x in saved.split(",")], [int(x) for x in current.split(",")]
        if not any(p in name for p in VOCABULARY_PARAMETERS) or saved[1:] != current[1:]:
            return None
        pairs.add((saved[0], current[0]))
    return sorted(pairs)[0] if len(pairs) == 1 else None


def load_checkpoint(self, filename, *args, **kwargs):
    """``Trainer.load_checkpoint``; an architecture mismatch raises :class:`CheckpointError`."""
    from fairseq.trainer import Trainer

    try:
        return upstream(Trainer, "load_checkpoint")(self, filename, *args, **kwargs)
    except Exception as error:
        if isinstance(error, CheckpointError) or not str(error).startswith(PREFIX):
            raise
        path = str(error)[len(PREFIX) :].split(";")[0]
        cause = " ".join(str(error.__cause__ or error.__context__ or "").split())
        more = "…" if len(cause) > SHOWN else ""
        sizes = dictionary_sizes(cause)
        if sizes is not None:
            raise CheckpointError(
                f"{path}: a checkpoint trained with another dictionary ({sizes[0]} symbols; the data given has "
                f"{sizes[1]}): give the data folder the model was trained on"
            ) from error
        raise CheckpointError(
            f"{path}: a checkpoint of another architecture or size than --arch and the size "
            f"flags build ({cause[:SHOWN]}{more})"
        ) from error


def install() -> None:
    """Wrap ``Trainer.load_checkpoint`` (idempotent)."""
    from fairseq.trainer import Trainer

    replace(Trainer, "load_checkpoint", load_checkpoint)
