"""A ``--save-dir`` that cannot be written is one line naming it, before any training, instead of a traceback.

fairseq-train checks its save folder first (``checkpoint_utils.verify_checkpoint_directory``: make it, write and remove
a file ``dummy`` in it) but lets the ``OSError`` of a folder that is a file, lies under a file or may not be written
escape as a traceback. Here it becomes a :class:`OneLineError` ``error: --save-dir DIR: cannot be written (...)``.
"""

from .errors import OneLineError
from .patching import replace, upstream

DEFECT = "fairseq-train reports a --save-dir it cannot write as an OSError traceback"
UPSTREAM = "fairseq/checkpoint_utils.py verify_checkpoint_directory: logger.warning(...); raise e"
CHECKED_AGAINST = "0.12.3.1"


class SaveDirError(OneLineError):
    """The save folder cannot be made or written; the message names it and the reason."""


def verify_checkpoint_directory(save_dir: str) -> None:
    """``checkpoint_utils.verify_checkpoint_directory``; an ``OSError`` becomes :class:`SaveDirError`."""
    from fairseq import checkpoint_utils

    try:
        upstream(checkpoint_utils, "verify_checkpoint_directory")(save_dir)
    except OSError as e:
        if isinstance(e, SaveDirError):
            raise
        raise SaveDirError(f"--save-dir {save_dir}: cannot be written ({e.strerror or e})") from e


def install() -> None:
    """Replace ``checkpoint_utils.verify_checkpoint_directory`` (idempotent)."""
    from fairseq import checkpoint_utils

    replace(checkpoint_utils, "verify_checkpoint_directory", verify_checkpoint_directory)
