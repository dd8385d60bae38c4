"""Every checkpoint file fairseq writes appears whole or not at all.

fairseq 0.12 saves the first checkpoint of a save atomically (``NAME.tmp``, then a rename) but makes the others,
``checkpoint_last.pt`` among them, with ``PathManager.copy``: a plain copy, so a kill during it leaves a truncated
``checkpoint_last.pt`` under its final name, and the next ``fairseq-train`` (which resumes from it) fails. Here
fairseq's ``checkpoint_utils`` sees a ``PathManager`` whose ``copy`` writes ``DEST.tmp``, syncs it and renames it: a
kill leaves the previous complete ``checkpoint_last.pt`` (and at worst a ``.tmp`` that nothing reads).
"""

import os
import shutil
import types

from ..text.io import atomic_path

DEFECT = "checkpoint_last.pt and the other copies of a save are plain copies: a kill mid-copy leaves a truncated file"
UPSTREAM = "fairseq/checkpoint_utils.py save_checkpoint: PathManager.copy(checkpoints[0], cp, overwrite=True)"
CHECKED_AGAINST = "0.12.3.1"


class AtomicCopyPathManager(types.SimpleNamespace):
    """fairseq's PathManager, except that local ``copy`` is copy-to-temporary + fsync + rename."""

    def __init__(self, inner):
        super().__init__()
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def copy(self, src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if "://" in src_path or "://" in dst_path:  # remote storage: fairseq's own behaviour
            return self._inner.copy(src_path, dst_path, overwrite)
        if os.path.exists(dst_path) and not overwrite:
            return False
        with atomic_path(dst_path) as tmp:
            shutil.copyfile(src_path, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        return True


def install() -> None:
    """Make fairseq's checkpoint copies atomic (idempotent)."""
    from fairseq import checkpoint_utils

    if not isinstance(checkpoint_utils.PathManager, AtomicCopyPathManager):
        checkpoint_utils.PathManager = AtomicCopyPathManager(checkpoint_utils.PathManager)
