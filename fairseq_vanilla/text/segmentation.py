"""Subword segmentation with sentencepiece: learn one joint model, segment a file with it.

(BPE with subword-nmt runs as its own command line, from ``scripts/lib.sh``.)"""

from typing import List

from .io import read_lines, write_lines


def spm_train(inputs: List[str], model_prefix: str, vocab_size: int) -> None:
    """Learn one joint sentencepiece model (unigram) on the given files."""
    import sentencepiece as spm

    for path in inputs:
        read_lines(path)  # same checks as everywhere: exists, UTF-8, not empty
    spm.SentencePieceTrainer.train(
        input=",".join(inputs),
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        character_coverage=1.0,
        model_type="unigram",
        minloglevel=2,
    )


def spm_encode(model: str, inp: str, out: str) -> None:
    """Segment each line of ``inp`` into sentencepiece pieces, joined by spaces."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    write_lines(out, [" ".join(sp.encode(line, out_type=str)) for line in read_lines(inp)])
