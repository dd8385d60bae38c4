"""Text utilities the pipeline scripts call: checks, Moses tokenisation (sacremoses), cleaning, hypothesis extraction.

``python -m fairseq_vanilla.pipeline COMMAND …``. Every command reads UTF-8, names the file and line of any
problem, exits non-zero on it, and writes its output to a temporary name that it renames on success, so an
interrupted run never leaves a half file behind.
"""
import argparse
import contextlib
import os
import re
import sys
from typing import Dict, Iterator, List


class PipelineError(Exception):
    """Bad input; the message names the file (and line) and the problem."""


def read_lines(path: str, allow_empty_file: bool = False, label: str = "") -> List[str]:
    """All lines of a UTF-8 text file without their newlines; errors name the file (or ``label``) and the line."""
    path_for_errors = label or path
    if not os.path.isfile(path):
        raise PipelineError(f"{path_for_errors}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines and not allow_empty_file:
        raise PipelineError(f"{path_for_errors}: file is empty")
    out = []
    for i, raw in enumerate(lines, 1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise PipelineError(f"{path_for_errors}:{i}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
    return out


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator:
    """Open ``path + '.tmp'`` for writing and rename it to ``path`` only if the block succeeds."""
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_settings(path: str) -> Dict[str, str]:
    """The ``key=value`` lines of a settings file such as a prepared folder's ``bin/pipeline.txt``."""
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def write_lines(path: str, lines: List[str]) -> None:
    with atomic_write(path) as f:
        f.writelines(line + "\n" for line in lines)


def check_parallel(src: str, tgt: str, allow_empty_lines: bool = True, labels=("", "")) -> int:
    """Both sides readable UTF-8, non-empty, and of equal line count; returns the count.

    ``labels`` name the files in messages (e.g. the original of a decompressed copy)."""
    a, b = read_lines(src, label=labels[0]), read_lines(tgt, label=labels[1])
    src, tgt = labels[0] or src, labels[1] or tgt
    if len(a) != len(b):
        raise PipelineError(f"{src} has {len(a)} lines but {tgt} has {len(b)}: parallel files must have equal line counts")
    if not allow_empty_lines:
        for path, lines in ((src, a), (tgt, b)):
            for i, line in enumerate(lines, 1):
                if not line.strip():
                    raise PipelineError(f"{path}:{i}: empty line")
    return len(a)


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


def clean(src_in: str, tgt_in: str, src_out: str, tgt_out: str, min_len: int = 1, max_len: int = 250,
          ratio: float = 1.5) -> int:
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
        raise PipelineError(f"{src_in}: no sentence pair survived cleaning (min {min_len}, max {max_len}, ratio {ratio})")
    write_lines(src_out, keep_a)
    write_lines(tgt_out, keep_b)
    return len(keep_a)


def spm_train(inputs: List[str], model_prefix: str, vocab_size: int) -> None:
    """Learn one joint sentencepiece model (unigram) on the given files."""
    import sentencepiece as spm

    for path in inputs:
        read_lines(path)  # same checks as everywhere: exists, UTF-8, not empty
    spm.SentencePieceTrainer.train(input=",".join(inputs), model_prefix=model_prefix, vocab_size=vocab_size,
                                   character_coverage=1.0, model_type="unigram", minloglevel=2)


def spm_encode(model: str, inp: str, out: str) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    write_lines(out, [" ".join(sp.encode(line, out_type=str)) for line in read_lines(inp)])


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


def symmetrize(forward: str, reverse: str, out: str, expect: int) -> None:
    """Two directions of "i-j" links (e.g. eflomal's -f and -r) → grow-diag-final-and, one line per sentence pair."""
    from .alignment import format_links, grow_diag_final_and, parse_links

    fwd = read_lines(forward, allow_empty_file=True)
    rev = read_lines(reverse, allow_empty_file=True)
    for path, lines in ((forward, fwd), (reverse, rev)):
        if len(lines) != expect:
            raise PipelineError(f"{path}: {len(lines)} alignment lines for {expect} sentence pairs")
    write_lines(out, [
        format_links(grow_diag_final_and(parse_links(f, f"{forward}:{n}: "), parse_links(r, f"{reverse}:{n}: ")))
        for n, (f, r) in enumerate(zip(fwd, rev), start=1)
    ])


ALIGN = re.compile(r"^A-(\d+)\t(.*)$")


def alignment_agreement(gen_out: str, reference: str) -> Dict[str, float]:
    """Agreement of ``fairseq-generate --print-alignment`` links (``A-`` lines) with a reference alignment file."""
    from .alignment import agreement, parse_links

    ref = [parse_links(line, f"{reference}:{n}: ") for n, line in enumerate(read_lines(reference, allow_empty_file=True), 1)]
    pred = {}
    for line in read_lines(gen_out, allow_empty_file=True):
        m = ALIGN.match(line)
        if m and int(m.group(1)) not in pred:
            pred[int(m.group(1))] = parse_links(m.group(2), f"{gen_out}: A-{m.group(1)}: ")
    if set(pred) != set(range(len(ref))):
        raise PipelineError(f"{gen_out}: alignments for {len(pred)} sentences, {reference} has {len(ref)} "
                            "(was fairseq-generate run with --print-alignment on the same split?)")
    return agreement([pred[i] for i in range(len(ref))], ref)


def count_lines(path: str) -> int:
    return len(read_lines(path, allow_empty_file=True))


IMDB_LABELS = ("neg", "pos")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def clean_review(text: str) -> str:
    """HTML line breaks (``<br />``) and runs of white space become one space."""
    return " ".join(_BR.sub(" ", text).split())


def _imdb_reviews(source: str) -> dict:
    """{(split, label): [(name, text), …]} from the aclImdb archive (.tar.gz) or its unpacked folder, sorted by file name."""
    import tarfile

    found = {(s, l): [] for s in ("train", "test") for l in IMDB_LABELS}
    pattern = re.compile(r"(?:^|/)aclImdb/(train|test)/([^/]+)/([^/]+\.txt)$")

    def add(member: str, read):
        m = pattern.search(member)
        if m and (m.group(1), m.group(2)) in found:
            raw = read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise PipelineError(f"{source}: {member}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
            text = clean_review(text)
            if not text:
                raise PipelineError(f"{source}: {member}: empty review")
            found[(m.group(1), m.group(2))].append((m.group(3), text))

    if os.path.isdir(source):
        root = source if os.path.basename(os.path.normpath(source)) == "aclImdb" else os.path.join(source, "aclImdb")
        if not os.path.isdir(root):
            raise PipelineError(f"{source}: neither an aclImdb folder nor a folder holding one")
        for split in ("train", "test"):
            for label in IMDB_LABELS:
                folder = os.path.join(root, split, label)
                if not os.path.isdir(folder):
                    continue
                for name in os.listdir(folder):
                    path = os.path.join(folder, name)
                    add("aclImdb/" + os.path.relpath(path, root), lambda path=path: open(path, "rb").read())
    elif os.path.isfile(source):
        try:
            with tarfile.open(source, "r:*") as tar:
                for member in tar:
                    if member.isfile():
                        add(member.name, lambda member=member: tar.extractfile(member).read())
        except (tarfile.TarError, EOFError, OSError) as e:
            raise PipelineError(f"{source}: not a readable tar archive ({e})") from None
    else:
        raise PipelineError(f"{source}: no such file or folder")
    for (split, label), reviews in found.items():
        if not reviews:
            raise PipelineError(f"{source}: aclImdb/{split}/{label}/ is missing or holds no review (*.txt)")
        reviews.sort(key=lambda r: (len(r[0]), r[0]))
    return found


def imdb_extract(source: str, out_dir: str, valid_size: int = 2500, seed: int = 1) -> Dict[str, int]:
    """Write ``{train,valid,test}.txt`` (one review a line, HTML line breaks removed) and ``.label`` (neg/pos).

    valid: ``valid_size`` reviews held out from the official training set, half of each label, chosen with
    ``seed``; test: the official test set, whole. Returns the number of reviews per split."""
    import numpy as np

    reviews = _imdb_reviews(source)
    if valid_size % len(IMDB_LABELS) or valid_size < 0:
        raise PipelineError(f"--valid-size must be a non-negative multiple of {len(IMDB_LABELS)} (label-balanced), got {valid_size}")
    rng = np.random.default_rng(seed)
    splits = {"train": [], "valid": [], "test": []}
    for label in IMDB_LABELS:
        train = reviews[("train", label)]
        per_label = valid_size // len(IMDB_LABELS)
        if per_label >= len(train):
            raise PipelineError(f"--valid-size {valid_size} leaves no {label!r} review for training ({len(train)} there)")
        held = set(rng.permutation(len(train))[:per_label].tolist())
        splits["valid"] += [(t, label) for i, (_, t) in enumerate(train) if i in held]
        splits["train"] += [(t, label) for i, (_, t) in enumerate(train) if i not in held]
        splits["test"] += [(t, label) for _, t in reviews[("test", label)]]
    for split, rows in splits.items():
        if not rows:
            continue
        write_lines(os.path.join(out_dir, f"{split}.txt"), [t for t, _ in rows])
        write_lines(os.path.join(out_dir, f"{split}.label"), [l for _, l in rows])
    return {split: len(rows) for split, rows in splits.items()}


def augment_file(text_in: str, label_in: str, text_out: str, label_out: str, deletion: float, swap: float,
                 seed: int) -> int:
    """Offline EDA (Trans-2): every review, then an augmented copy of it (word-level random deletion, then swap).

    The output holds twice the lines of the input, labels copied; returns that count."""
    import numpy as np

    from .augmentation import augment

    texts, labels = read_lines(text_in), read_lines(label_in)
    if len(texts) != len(labels):
        raise PipelineError(f"{text_in} has {len(texts)} lines but {label_in} has {len(labels)}")
    rng = np.random.default_rng(seed)
    aug = [" ".join(augment(t.split(), deletion, swap, rng)) for t in texts]
    write_lines(text_out, texts + aug)
    write_lines(label_out, labels + labels)
    return 2 * len(texts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fairseq_vanilla.pipeline", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check-parallel", help="equal line counts, UTF-8, non-empty")
    c.add_argument("src")
    c.add_argument("tgt")
    c.add_argument("--no-empty-lines", action="store_true", help="also refuse empty lines")
    c.add_argument("--labels", nargs=2, default=("", ""), metavar=("SRC_NAME", "TGT_NAME"),
                   help="names for the two files in error messages")
    t = sub.add_parser("tokenize", help="Moses normalise + tokenise")
    t.add_argument("--lang", required=True)
    t.add_argument("--lower", action="store_true")
    t.add_argument("inp")
    t.add_argument("out")
    d = sub.add_parser("detokenize", help="Moses detokenise")
    d.add_argument("--lang", required=True)
    d.add_argument("inp")
    d.add_argument("out")
    k = sub.add_parser("clean", help="clean-corpus-n")
    for name in ("src_in", "tgt_in", "src_out", "tgt_out"):
        k.add_argument(name)
    k.add_argument("--min", type=int, default=1)
    k.add_argument("--max", type=int, default=250)
    k.add_argument("--ratio", type=float, default=1.5)
    h = sub.add_parser("extract-hyps", help="hypotheses from fairseq-generate output, checked against the source count")
    h.add_argument("gen_out")
    h.add_argument("out")
    h.add_argument("--expect", type=int, required=True, help="number of source sentences")
    st = sub.add_parser("spm-train", help="learn a joint sentencepiece model")
    st.add_argument("--model-prefix", required=True)
    st.add_argument("--vocab-size", type=int, required=True)
    st.add_argument("inputs", nargs="+")
    se = sub.add_parser("spm-encode", help="segment a file with a sentencepiece model")
    se.add_argument("--model", required=True)
    se.add_argument("inp")
    se.add_argument("out")
    cs = sub.add_parser("compound-split", help="split hyphenated compounds for the paper-style BLEU")
    cs.add_argument("inp")
    cs.add_argument("out")
    ie = sub.add_parser("imdb-extract", help="aclImdb archive or folder → {train,valid,test}.{txt,label}")
    ie.add_argument("--from", dest="source", required=True, help="aclImdb_v1 .tar.gz, or the aclImdb folder (or its parent)")
    ie.add_argument("--out", required=True)
    ie.add_argument("--valid-size", type=int, default=2500, help="reviews held out of train for validation, label-balanced")
    ie.add_argument("--seed", type=int, default=1)
    au = sub.add_parser("augment", help="offline random deletion + random swap: writes the doubled training set")
    for name in ("text_in", "label_in", "text_out", "label_out"):
        au.add_argument(name)
    au.add_argument("--deletion", type=float, default=0.2)
    au.add_argument("--swap", type=float, default=0.2)
    au.add_argument("--seed", type=int, default=1)
    sy = sub.add_parser("symmetrize", help="grow-diag-final-and of two alignment directions")
    sy.add_argument("forward")
    sy.add_argument("reverse")
    sy.add_argument("out")
    sy.add_argument("--expect", type=int, required=True, help="number of sentence pairs")
    ag = sub.add_parser("align-agreement", help="precision/recall/AER of fairseq-generate --print-alignment links")
    ag.add_argument("gen_out")
    ag.add_argument("reference")
    n = sub.add_parser("count", help="number of lines")
    n.add_argument("path")
    a = p.parse_args(argv)
    try:
        if a.cmd == "check-parallel":
            print(check_parallel(a.src, a.tgt, allow_empty_lines=not a.no_empty_lines, labels=a.labels))
        elif a.cmd == "tokenize":
            tokenize(a.lang, a.inp, a.out, lower=a.lower)
        elif a.cmd == "detokenize":
            detokenize(a.lang, a.inp, a.out)
        elif a.cmd == "clean":
            print(clean(a.src_in, a.tgt_in, a.src_out, a.tgt_out, a.min, a.max, a.ratio))
        elif a.cmd == "extract-hyps":
            extract_hypotheses(a.gen_out, a.out, a.expect)
        elif a.cmd == "spm-train":
            spm_train(a.inputs, a.model_prefix, a.vocab_size)
        elif a.cmd == "spm-encode":
            spm_encode(a.model, a.inp, a.out)
        elif a.cmd == "compound-split":
            compound_split(a.inp, a.out)
        elif a.cmd == "imdb-extract":
            counts = imdb_extract(a.source, a.out, a.valid_size, a.seed)
            print(" ".join(f"{k}={v}" for k, v in counts.items()))
        elif a.cmd == "augment":
            print(augment_file(a.text_in, a.label_in, a.text_out, a.label_out, a.deletion, a.swap, a.seed))
        elif a.cmd == "symmetrize":
            symmetrize(a.forward, a.reverse, a.out, a.expect)
        elif a.cmd == "align-agreement":
            scores = alignment_agreement(a.gen_out, a.reference)
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in scores.items()))
        elif a.cmd == "count":
            print(count_lines(a.path))
    except (PipelineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
