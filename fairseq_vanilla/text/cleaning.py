"""Corpus cleaning as Moses' ``clean-corpus-n.perl``: sentence pairs of implausible lengths are dropped."""

from .io import PipelineError, read_lines, write_lines


def clean(
    src_in: str, tgt_in: str, src_out: str, tgt_out: str, min_len: int = 1, max_len: int = 250, ratio: float = 1.5
) -> int:
    """Moses clean-corpus-n: drop pairs with a side shorter than min_len or longer than max_len words,
    or whose length ratio exceeds ``ratio`` (both directions). Returns the pairs kept."""
    a, b = read_lines(src_in), read_lines(tgt_in)
    if len(a) != len(b):
        raise PipelineError(f"{src_in} has {len(a)} lines but {tgt_in} has {len(b)}")
    keep_a, keep_b = [], []
    for x, y in zip(a, b):
        lx, ly = len(x.split()), len(y.split())
        if not (min_len <= lx <= max_len and min_len <= ly <= max_len):
            continue
        if lx / ly > ratio or ly / lx > ratio:
            continue
        keep_a.append(x)
        keep_b.append(y)
    if not keep_a:
        raise PipelineError(
            f"{src_in}: no sentence pair survived cleaning (min {min_len}, max {max_len}, ratio {ratio})"
        )
    write_lines(src_out, keep_a)
    write_lines(tgt_out, keep_b)
    return len(keep_a)
