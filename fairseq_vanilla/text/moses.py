"""Moses punctuation normalisation, tokenisation and detokenisation (sacremoses), as functions and over files."""

from .io import read_lines, write_lines


def moses_tokenizer(lang: str, lower: bool = False, aggressive_dash: bool = True):
    """A function line → Moses-normalised, tokenised (sacremoses), optionally lower-cased line; no XML escaping."""
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    norm, tok = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)

    def apply(line: str) -> str:
        text = tok.tokenize(norm.normalize(line), aggressive_dash_splits=aggressive_dash, escape=False, return_str=True)
        return text.lower() if lower else text

    return apply


def tokenize(lang: str, inp: str, out: str, lower: bool = False, aggressive_dash: bool = True) -> None:
    """Moses punctuation normalisation + tokenisation (sacremoses) of a file, no XML escaping."""
    apply = moses_tokenizer(lang, lower, aggressive_dash)
    write_lines(out, [apply(line) for line in read_lines(inp)])


def moses_detokenizer(lang: str):
    """A function tokenised line → text: undoes Moses tokenisation (sacremoses), including aggressive dash splits."""
    from sacremoses import MosesDetokenizer

    detok = MosesDetokenizer(lang=lang)
    return lambda line: detok.detokenize(line.replace(" @-@ ", "-").split())


def detokenize(lang: str, inp: str, out: str) -> None:
    """Undo Moses tokenisation (sacremoses) of a file, including aggressive dash splits."""
    apply = moses_detokenizer(lang)
    write_lines(out, [apply(line) for line in read_lines(inp, allow_empty_file=True)])
