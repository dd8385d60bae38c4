#!/usr/bin/env python3
"""Translate raw text with an exported CTranslate2 model: raw lines on stdin, one detokenised translation per line
on stdout, in order. Defaults are scripts/generate.sh's (beam 5, length penalty 1.0, max length 200).

    echo "A man is riding a bike." | python scripts/translate.py --model runs/m30/ct2
    python scripts/translate.py --model DIR [--beam 5] [--lenpen 1.0] [--max-len-b 200] [--batch-size 64]
        [--compute-type default|auto|float32|int8|int8_float32] [--threads N] < input.txt > output.txt

With --data-bin BIN --gen-subset SPLIT it instead translates a binarised split (the same source tokens as
fairseq-generate) and prints fairseq-generate's S-/H- lines; scripts/generate.sh --engine ctranslate2 uses that.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fairseq_vanilla.inference.ctranslate2 import ExportError  # noqa: E402
from fairseq_vanilla.inference.fast_translator import SKIP_FLAG, FastTranslator, generate_split  # noqa: E402
from fairseq_vanilla.text.io import PipelineError  # noqa: E402


def utf8_lines(stream, name: str = "<stdin>"):
    """The lines of a binary stream decoded as UTF-8; a bad byte is an error naming the line and column."""
    for i, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PipelineError(
                f"{name}:{i}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
            ) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="folder written by scripts/export-ctranslate2.py")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--lenpen", type=float, default=1.0, help="fairseq's --lenpen (CTranslate2's length_penalty)")
    parser.add_argument("--max-len-b", type=int, default=200, help="at most this many tokens before </s>")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per CTranslate2 batch")
    parser.add_argument(
        "--quantization",
        "--compute-type",
        dest="quantization",
        default="default",
        choices=("default", "auto", "float32", "int8", "int8_float32"),
        help="CTranslate2 compute type (default: as exported; auto: the fastest measured on a CPU, said on stderr)",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: OMP_NUM_THREADS, else all)")
    parser.add_argument("--data-bin", help="binarised data folder: translate --gen-subset from it instead of stdin")
    parser.add_argument("--gen-subset", default="test")
    parser.add_argument("--source-lang", default="en")
    parser.add_argument("--target-lang", default="de")
    parser.add_argument("--remove-bpe", default=None, help="with --data-bin: as fairseq-generate's --remove-bpe")
    parser.add_argument(
        SKIP_FLAG,
        dest="skip_too_long",
        action="store_true",
        help="translate a source longer than the model accepts as an empty line (default: refuse it, as fairseq)",
    )
    args = parser.parse_args(argv)
    search = dict(beam=args.beam, lenpen=args.lenpen, max_len_b=args.max_len_b)
    try:
        mt = FastTranslator(
            args.model,
            compute_type=args.quantization,
            threads=args.threads,
            batch_size=args.batch_size,
            skip_too_long=args.skip_too_long,
        )
        if args.quantization == "auto":
            print(f"[translate] compute type: {mt.compute_type} ({mt.compute_type_why})", file=sys.stderr)
        if args.data_bin:
            lines = generate_split(
                mt, args.data_bin, args.gen_subset, args.source_lang, args.target_lang, args.remove_bpe, **search
            )
        else:
            lines = mt.translate_lines(utf8_lines(sys.stdin.buffer), **search)
        for line in lines:
            print(line, flush=not args.data_bin)
    except (ExportError, PipelineError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
