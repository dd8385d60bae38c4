"""A checkpoint of another architecture is one line naming the file and the parameters that do not fit.

fairseq's ``Trainer.load_checkpoint`` catches the error of ``load_state_dict`` (which lists the missing, unexpected
and mis-sized parameters) and raises a bare ``Exception("Cannot load model parameters from checkpoint …; please
ensure that the architectures match.")`` in its place: a traceback, with the useful part in the chained exception
above it. Here that exception becomes a :class:`CheckpointError` whose one line names the file and the mismatch.
"""

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
        raise CheckpointError(
            f"{path}: a checkpoint of another architecture or size than --arch and the size "
            f"flags build ({cause[:SHOWN]}{more})"
        ) from error


def install() -> None:
    """Wrap ``Trainer.load_checkpoint`` (idempotent)."""
    from fairseq.trainer import Trainer

    replace(Trainer, "load_checkpoint", load_checkpoint)
