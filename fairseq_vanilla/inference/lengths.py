"""Sources longer than the model accepts: refused with fairseq's own message, or skipped on request, never cut.

CTranslate2 truncates a too-long source (``translate_batch(max_input_length=1024)``) and translates the rest;
fairseq-generate and fairseq-interactive refuse it (``FairseqTask.filter_indices_by_size``) unless
``--skip-invalid-size-inputs-valid-test`` is given. The CTranslate2 path does as fairseq does.
"""

import os
from typing import List, Tuple

from ..text.io import read_settings

MAX_POSITIONS = 1024  # max_source/target_positions of the presets (an export records its model's own)
SKIP_FLAG = "--skip-invalid-size-inputs-valid-test"  # fairseq's flag for skipping too-long examples


class SourceTooLongError(ValueError):
    """A source longer than the model accepts; fairseq's own message, with its hint (:data:`SKIP_FLAG`)."""


def too_long_sources(sources: List[List[str]], max_positions: Tuple[int, int], skip: bool = False) -> List[int]:
    """Indices of the sources longer than the model's positions (counting the ``</s>`` every source gets).

    fairseq-interactive and fairseq-generate refuse such a source (``FairseqTask.filter_indices_by_size``) unless
    :data:`SKIP_FLAG` is given; so do we, with fairseq's words, instead of CTranslate2's silent truncation."""
    too_long = [i for i, src in enumerate(sources) if len(src) + 1 > max_positions[0]]
    if too_long and not skip:
        i = too_long[0]
        raise SourceTooLongError(
            f"Size of sample #{i} is invalid (={(len(sources[i]) + 1, 0)}) since max_positions={tuple(max_positions)}, "
            f"skip this example with {SKIP_FLAG}"
        )
    return too_long


def model_positions(model_dir: str) -> Tuple[int, int]:
    """(max_source_positions, max_target_positions) recorded in an export's ``pipeline.txt`` (older exports: the
    presets' 1024)."""
    path = os.path.join(model_dir, "pipeline.txt")
    settings = read_settings(path) if os.path.isfile(path) else {}
    return tuple(int(settings.get(f"max_{side}_positions", MAX_POSITIONS)) for side in ("source", "target"))
