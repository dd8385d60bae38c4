"""Translations made ready for scoring: hypotheses out of ``fairseq-generate`` output, in source order, and the
compound splitting of the paper's tokenised BLEU, and BLEU over ``fairseq-generate``'s own tokenised lines."""

import re
from typing import Mapping

from ..text.io import PipelineError, read_lines, write_lines

HYPO = re.compile(r"^H-(\d+)\t[^\t]*\t(.*)$")


def extract_hypotheses(gen_out: str, out: str, expect: int) -> None:
    """Hypotheses of ``fairseq-generate`` output, in source order; exactly one per source sentence."""
    hyps = {}
    for line in read_lines(gen_out, allow_empty_file=True):
        m = HYPO.match(line)
        if m and int(m.group(1)) not in hyps:  # with --nbest > 1 the first (best) one counts
            hyps[int(m.group(1))] = m.group(2)
    if len(hyps) != expect or set(hyps) != set(range(expect)):
        missing = sorted(set(range(expect)) - set(hyps))
        raise PipelineError(
            f"{gen_out}: {len(hyps)} hypotheses for {expect} source sentences"
            + (f" (missing ids {missing[:10]}{' …' if len(missing) > 10 else ''})" if missing else "")
        )
    write_lines(out, [hyps[i] for i in range(expect)])


def compound_split(inp: str, out: str) -> None:
    """Split hyphenated compounds as the paper's scores do (tensor2tensor's get_ende_bleu):
    ``a-b`` and Moses' ``a @-@ b`` both become ``a ##AT##-##AT## b``."""
    mark = "\x00"  # stands for a split hyphen until the end, so the regex cannot split ##AT##-##AT## again
    result = []
    for line in read_lines(inp, allow_empty_file=True):
        line = line.replace(" @-@ ", f" {mark} ")
        line = re.sub(r"(\S)-(\S)", lambda m: f"{m.group(1)} {mark} {m.group(2)}", line)
        result.append(line.replace(mark, "##AT##-##AT##"))
    write_lines(out, result)


def generate_lines_bleu(hyps: Mapping[int, str], refs: Mapping[int, str]) -> float:
    """Corpus BLEU of ``fairseq-generate``'s H- lines against its T- lines, by sentence id: the text as the model sees
    it (tokenised, BPE removed), sacreBLEU with no tokeniser of its own; every id of ``refs`` needs a hypothesis.
    For comparing engines on the same lines, not for reporting (reported BLEU is detokenised, ``significance``)."""
    import sacrebleu

    ids = sorted(refs)
    # force=True: the input is tokenised on purpose; it silences sacreBLEU's "forgot to detokenize" warning
    return sacrebleu.corpus_bleu([hyps[i] for i in ids], [[refs[i] for i in ids]], tokenize="none", force=True).score
