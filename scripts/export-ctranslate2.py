#!/usr/bin/env python3
"""Export a trained vanilla_transformer (or vanilla_transformer_align) checkpoint to a CTranslate2 model folder,
with what raw text needs (pipeline.txt, BPE codes and vocabulary or the sentencepiece model) copied beside it.

    python scripts/export-ctranslate2.py --path runs/m30/vanilla/checkpoint_best.pt --data runs/multi30k \\
        --out runs/m30/ct2 [--quantization float32|int8|int8_float32]
    echo "A man is riding a bike." | python scripts/translate.py --model runs/m30/ct2

--data is the --out folder of the prepare script the model was trained on (bin/dict.*.txt, bin/pipeline.txt).
--quantization stores the weights quantised; a float32 export can also run as int8 (translate.py --quantization).
--out is new, empty or an earlier export (only its files are replaced); any other folder needs --force, and never
the folder of --path or --data. Bad input: one line 'error: <flag or file>: <problem>', exit status 2 (1 for a
checkpoint or prepared folder the export cannot read).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fairseq_vanilla.fairseq_fixes.checkpoint_safety import CheckpointError  # noqa: E402
from fairseq_vanilla.inference.ctranslate2 import QUANTIZATIONS, ExportError, export  # noqa: E402
from fairseq_vanilla.text.io import PipelineError  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", required=True, help="checkpoint (.pt) of a vanilla_transformer(_align) model")
    parser.add_argument("--data", required=True, help="prepared folder the model was trained on")
    parser.add_argument(
        "--out", required=True, help="folder to write: new, empty or an earlier export (its files replaced)"
    )
    parser.add_argument("--force", action="store_true", help="write into --out even if it is not an earlier export")
    parser.add_argument("--quantization", default="float32", choices=QUANTIZATIONS)
    args = parser.parse_args(argv)
    try:
        out = export(args.path, args.data, args.out, args.quantization, force=args.force)
    except PipelineError as e:  # --out refused
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ExportError, CheckpointError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"CTranslate2 model ({args.quantization}): {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
